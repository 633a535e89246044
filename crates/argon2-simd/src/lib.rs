//! Argon2 (RFC 9106) with AVX-512 and AVX2 compression kernels, the
//! fastest the CPU has chosen at run time.
//!
//! Why: a `login` is one argon2id evaluation plus a little overhead, so the
//! speed of the compression function is the speed of the command. The
//! argon2 crate has one kernel, portable code the compiler vectorises as it
//! can. On a CPU with AVX-512 the block function runs in 512-bit registers
//! with native 64-bit rotates, and the block just written stays in
//! registers for the next one; on one with only AVX2 (most laptops and
//! desktops) it runs in 256-bit registers, rotates as byte shuffles
//! (BENCHMARKS.md has the figures).
//!
//! Invariants:
//! - The result is the argon2 crate's, bit for bit: the tests compare the
//!   two on random inputs of every algorithm, version, lane count and output
//!   length, and on RFC 9106's known answers.
//! - A kernel is chosen only when the CPU reports its instructions at run
//!   time (the binary is built for any x86-64); without AVX2, or for inputs
//!   the argon2 crate would refuse, [`hash_into`] returns `None` and the
//!   caller uses the crate.
//! - Both kernels run one `fill` (the passes over memory) and one G
//!   (`kernel_common!`); only P's rounds, loads and stores differ.
//! - Only the prehash, the first blocks and the final hash are here besides
//!   the kernel; password-hash parsing and parameter checks stay the crate's
//!   (`Params` can only hold valid parameters).
//! - `unsafe` is limited to the vector loads and stores of whole blocks and
//!   to entering a kernel after its feature check.

use argon2::{Algorithm, Block, Params, Version};

const SYNC_POINTS: usize = 4;

/// The argon2 tag of `pwd` and `salt` into `out`, filling `mem` (at least
/// `params.block_count()` blocks), or `None` when this CPU or these inputs
/// are not for this kernel: the caller then uses the argon2 crate.
#[allow(clippy::too_many_arguments)]
pub fn hash_into(
    alg: Algorithm,
    version: Version,
    params: &Params,
    secret: Option<&[u8]>,
    pwd: &[u8],
    salt: &[u8],
    out: &mut [u8],
    mem: &mut [Block],
) -> Option<()> {
    hash_with(
        kernel()?,
        None,
        alg,
        version,
        params,
        secret,
        pwd,
        salt,
        out,
        mem,
    )
    .map(|_| ())
}

/// How a hash that may be stopped ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finished {
    /// The tag is in `out`.
    Done,
    /// `stop` was seen set at one of the passes' sync points (four a pass):
    /// the work was given up and `out` was not written.
    Stopped,
}

/// [`hash_into`] that gives up once `stop` is set, at the next quarter of
/// a pass: for a hash computed ahead of knowing whether it will be needed.
#[allow(clippy::too_many_arguments)]
pub fn hash_into_unless(
    stop: &std::sync::atomic::AtomicBool,
    alg: Algorithm,
    version: Version,
    params: &Params,
    secret: Option<&[u8]>,
    pwd: &[u8],
    salt: &[u8],
    out: &mut [u8],
    mem: &mut [Block],
) -> Option<Finished> {
    hash_with(
        kernel()?,
        Some(stop),
        alg,
        version,
        params,
        secret,
        pwd,
        salt,
        out,
        mem,
    )
}

/// [`hash_into`] with the kernel named.
#[allow(clippy::too_many_arguments)]
fn hash_with(
    kernel: Kernel,
    stop: Option<&std::sync::atomic::AtomicBool>,
    alg: Algorithm,
    version: Version,
    params: &Params,
    secret: Option<&[u8]>,
    pwd: &[u8],
    salt: &[u8],
    out: &mut [u8],
    mem: &mut [Block],
) -> Option<Finished> {
    if !kernel.runs_here() {
        return None;
    }
    // The crate's own limits (its errors are the ones users should see).
    let out_len_ok = match params.output_len() {
        Some(n) => out.len() == n,
        None => (Params::MIN_OUTPUT_LEN..=Params::MAX_OUTPUT_LEN).contains(&out.len()),
    };
    let fits = |n: usize| u32::try_from(n).is_ok();
    if !out_len_ok
        || salt.len() < argon2::MIN_SALT_LEN
        || salt.len() > argon2::MAX_SALT_LEN
        || pwd.len() > argon2::MAX_PWD_LEN
        || !secret.is_none_or(|s| s.len() <= argon2::MAX_SECRET_LEN && fits(s.len()))
        || !fits(out.len())
    {
        return None;
    }
    let mem = mem.get_mut(..params.block_count())?;
    let h0 = initial_hash(alg, version, params, secret, pwd, salt, out.len());
    let lane_length = params.block_count() / params.p_cost() as usize;
    for (l, lane) in mem.chunks_exact_mut(lane_length).enumerate() {
        for (i, block) in lane[..2].iter_mut().enumerate() {
            let mut bytes = zeroize::Zeroizing::new([0u8; Block::SIZE]);
            let (i, l) = (i as u32, l as u32);
            blake2b_long(
                &[&h0[..], &i.to_le_bytes(), &l.to_le_bytes()],
                &mut bytes[..],
            );
            for (w, chunk) in block.as_mut().iter_mut().zip(bytes.chunks_exact(8)) {
                let mut b = [0u8; 8];
                b.copy_from_slice(chunk);
                *w = u64::from_le_bytes(b);
            }
        }
    }
    if !fill(kernel, stop, mem, alg, version, params) {
        return Some(Finished::Stopped);
    }
    let mut last = Block::new();
    for lane in mem.chunks_exact(lane_length) {
        last ^= &lane[lane_length - 1];
    }
    let mut bytes = zeroize::Zeroizing::new([0u8; Block::SIZE]);
    for (chunk, w) in bytes.chunks_exact_mut(8).zip(last.as_ref()) {
        chunk.copy_from_slice(&w.to_le_bytes());
    }
    blake2b_long(&[&bytes[..]], out);
    Some(Finished::Done)
}

/// The block function's implementations, fastest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// Sixteen 512-bit registers hold a block.
    Avx512,
    /// Thirty-two 256-bit registers (the stack) hold a block.
    Avx2,
}

impl Kernel {
    pub const ALL: [Kernel; 2] = [Kernel::Avx512, Kernel::Avx2];

    /// Whether this CPU has the instructions this kernel uses, asked at
    /// run time (the binary is built for any x86-64).
    pub fn runs_here(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            match self {
                Kernel::Avx512 => {
                    !cfg!(feature = "avx2-only") && std::arch::is_x86_feature_detected!("avx512f")
                }
                Kernel::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = self;
            false
        }
    }
}

/// The kernel this CPU runs, if any: otherwise the caller uses the crate.
pub fn kernel() -> Option<Kernel> {
    Kernel::ALL.into_iter().find(|k| k.runs_here())
}

/// Whether this CPU runs one of the kernels.
pub fn available() -> bool {
    kernel().is_some()
}

/// H0 of RFC 9106 §3.2.
fn initial_hash(
    alg: Algorithm,
    version: Version,
    params: &Params,
    secret: Option<&[u8]>,
    pwd: &[u8],
    salt: &[u8],
    out_len: usize,
) -> zeroize::Zeroizing<[u8; 64]> {
    use blake2::{Blake2b512, Digest};
    let le = |n: usize| (n as u32).to_le_bytes();
    let mut d = Blake2b512::new();
    d.update(params.p_cost().to_le_bytes());
    d.update(le(out_len));
    d.update(params.m_cost().to_le_bytes());
    d.update(params.t_cost().to_le_bytes());
    d.update((version as u32).to_le_bytes());
    d.update((alg as u32).to_le_bytes());
    d.update(le(pwd.len()));
    d.update(pwd);
    d.update(le(salt.len()));
    d.update(salt);
    let secret = secret.unwrap_or_default();
    d.update(le(secret.len()));
    d.update(secret);
    d.update(le(params.data().len()));
    d.update(params.data());
    let mut h0 = zeroize::Zeroizing::new([0u8; 64]);
    h0.copy_from_slice(&d.finalize());
    h0
}

/// H' of RFC 9106 §3.3: BLAKE2b stretched to `out.len()` bytes.
fn blake2b_long(inputs: &[&[u8]], out: &mut [u8]) {
    use blake2::digest::block_api::{UpdateCore, VariableOutputCore};
    use blake2::digest::block_buffer::LazyBuffer;
    use blake2::{Blake2b512, Blake2bVarCore, Digest};

    // BLAKE2b with an output of `n` ≤ 64 bytes of `parts`.
    fn short(parts: &[&[u8]], out: &mut [u8]) {
        let Ok(mut h) = Blake2bVarCore::new(out.len()) else {
            return;
        };
        let mut buf = LazyBuffer::new(&[]);
        for p in parts {
            buf.digest_blocks(p, |b| h.update_blocks(b));
        }
        let mut full = Default::default();
        h.finalize_variable_core(&mut buf, &mut full);
        out.copy_from_slice(&full[..out.len()]);
    }

    let len = (out.len() as u32).to_le_bytes();
    if out.len() <= 64 {
        let mut parts = vec![&len[..]];
        parts.extend_from_slice(inputs);
        short(&parts, out);
        return;
    }
    let mut d = Blake2b512::new();
    d.update(len);
    for p in inputs {
        d.update(p);
    }
    let mut v = d.finalize();
    let (first, mut rest) = out.split_at_mut(32);
    first.copy_from_slice(&v[..32]);
    while rest.len() > 64 {
        let (chunk, tail) = rest.split_at_mut(32);
        v = Blake2b512::digest(v);
        chunk.copy_from_slice(&v[..32]);
        rest = tail;
    }
    short(&[&v[..]], rest);
}

/// The passes over memory (RFC 9106 §3.4), after the first two blocks of
/// each lane; false when `stop` was seen set (at the start of a segment,
/// a quarter pass) and the work given up.
fn fill(
    kernel: Kernel,
    stop: Option<&std::sync::atomic::AtomicBool>,
    mem: &mut [Block],
    alg: Algorithm,
    version: Version,
    params: &Params,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: `hash_with` only gets here after `kernel.runs_here()`,
        // i.e. after the CPU reported the kernel's instructions.
        match kernel {
            Kernel::Avx512 => unsafe { avx512::fill(stop, mem, alg, version, params) },
            Kernel::Avx2 => unsafe { avx2::fill(stop, mem, alg, version, params) },
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (kernel, stop, mem, alg, version, params);
        false
    }
}

/// Where the block after `block` in (`pass`, `slice`, `lane`) takes its
/// reference from (RFC 9106 §3.4.1.2), given its 64 pseudo-random bits.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn ref_index(
    rand: u64,
    pass: usize,
    slice: usize,
    lane: usize,
    block: usize,
    lanes: usize,
    lane_length: usize,
    segment_length: usize,
) -> usize {
    let ref_lane = if pass == 0 && slice == 0 {
        lane
    } else {
        (rand >> 32) as usize % lanes
    };
    let area = if pass == 0 {
        if slice == 0 {
            block - 1
        } else if ref_lane == lane {
            slice * segment_length + block - 1
        } else {
            slice * segment_length - usize::from(block == 0)
        }
    } else if ref_lane == lane {
        lane_length - segment_length + block - 1
    } else {
        lane_length - segment_length - usize::from(block == 0)
    };
    let mut map = rand & 0xFFFF_FFFF;
    map = (map * map) >> 32;
    let relative = area - 1 - ((area as u64 * map) >> 32) as usize;
    let start = if pass != 0 && slice != SYNC_POINTS - 1 {
        (slice + 1) * segment_length
    } else {
        0
    };
    ref_lane * lane_length + (start + relative) % lane_length
}

/// What both kernels share, written once: G (`compress`), P over a block
/// (`permute`), the prefetch, and the passes over memory (`fill`, RFC 9106
/// §3.4). Expanded inside a kernel's module, it uses that module's
/// `State`, `load`, `store`, `xor`, `rows`, `columns_first` (after which
/// word 0 of the block is final), `columns_rest`, `first_word`, `word0` and
/// `store_words`.
macro_rules! kernel_common {
    ($feature:literal) => {
        /// P over rows then columns of `q`.
        #[inline]
        #[target_feature(enable = $feature)]
        fn permute(q: &mut State) {
            rows(q);
            columns_first(q);
            columns_rest(q);
        }

        /// P over the columns held by registers `k`, `k + STRIDE`, …,
        /// `k + 7·STRIDE`, after `rows`. Column i is words 2i, 2i+1 of
        /// every row, one 128-bit lane of a register; a row is `STRIDE`
        /// registers. So register `STRIDE·r + k` holds the inputs v2r,
        /// v2r+1 of each of its columns, one column per lane, and they run
        /// side by side with no transposing: `a0` holds v0,v1, `a1` v2,v3,
        /// `b0` v4,v5, `b1` v6,v7, `c0` v8,v9, `c1` v10,v11, `d0` v12,v13,
        /// `d1` v14,v15. For the diagonals the words move between the two
        /// registers of a pair with blends and in-lane swaps (as the
        /// reference implementation's `BLAKE2_ROUND_2` does), cheaper than
        /// the cross-lane permutes the rows need. After `k = 0`, word 0 of
        /// the result is final.
        #[inline]
        #[target_feature(enable = $feature)]
        fn columns(q: &mut State, k: usize) {
            let [
                mut a0,
                mut a1,
                mut b0,
                mut b1,
                mut c0,
                mut c1,
                mut d0,
                mut d1,
            ] = core::array::from_fn(|r| q[STRIDE * r + k]);
            half_g!(a0, b0, c0, d0, 32, 24);
            half_g!(a1, b1, c1, d1, 32, 24);
            half_g!(a0, b0, c0, d0, 16, 63);
            half_g!(a1, b1, c1, d1, 16, 63);
            // Diagonals: G(v0,v5,v10,v15), G(v1,v6,v11,v12) beside a0 and
            // G(v2,v7,v8,v13), G(v3,v4,v9,v14) beside a1.
            (b0, b1) = (
                swap_words!(take_first!(b0, b1)),  // v5, v6
                swap_words!(take_second!(b0, b1)), // v7, v4
            );
            (c0, c1) = (c1, c0);
            (d0, d1) = (
                swap_words!(take_second!(d0, d1)), // v15, v12
                swap_words!(take_first!(d0, d1)),  // v13, v14
            );
            half_g!(a0, b0, c0, d0, 32, 24);
            half_g!(a1, b1, c1, d1, 32, 24);
            half_g!(a0, b0, c0, d0, 16, 63);
            half_g!(a1, b1, c1, d1, 16, 63);
            // And back.
            (b0, b1) = (
                swap_words!(take_second!(b0, b1)), // v4, v5
                swap_words!(take_first!(b0, b1)),  // v6, v7
            );
            (c0, c1) = (c1, c0);
            (d0, d1) = (
                swap_words!(take_first!(d0, d1)),  // v12, v13
                swap_words!(take_second!(d0, d1)), // v14, v15
            );
            for (r, v) in [a0, a1, b0, b1, c0, c1, d0, d1].into_iter().enumerate() {
                q[STRIDE * r + k] = v;
            }
        }

        /// G(x, y) of RFC 9106 §3.5: P(R) ⊕ R with R = x ⊕ y.
        #[inline]
        #[target_feature(enable = $feature)]
        fn compress(x: &State, y: &State) -> State {
            let r = xor(x, y);
            let mut q = r;
            permute(&mut q);
            xor(&q, &r)
        }

        /// Asks for the sixteen cache lines of `b` ahead of their use.
        #[inline]
        #[target_feature(enable = $feature)]
        fn prefetch(b: &Block) {
            let p = b.as_ref().as_ptr().cast::<i8>();
            for line in 0..16 {
                // SAFETY: a hint about an address inside `b`; nothing is read.
                unsafe { _mm_prefetch::<_MM_HINT_T0>(p.add(64 * line)) }
            }
        }

        /// # Safety
        /// The CPU must support the kernel's target feature.
        #[target_feature(enable = $feature)]
        pub(super) unsafe fn fill(
            stop: Option<&std::sync::atomic::AtomicBool>,
            mem: &mut [Block],
            alg: Algorithm,
            version: Version,
            params: &Params,
        ) -> bool {
            let block_count = params.block_count();
            let lanes = params.p_cost() as usize;
            let lane_length = block_count / lanes;
            let segment_length = lane_length / SYNC_POINTS;
            let passes = params.t_cost() as usize;
            let zero = load(&Block::new());
            for pass in 0..passes {
                for slice in 0..SYNC_POINTS {
                    if stop.is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed)) {
                        return false;
                    }
                    for lane in 0..lanes {
                        let independent = alg == Algorithm::Argon2i
                            || (alg == Algorithm::Argon2id && pass == 0 && slice < SYNC_POINTS / 2);
                        let mut input = Block::new();
                        let mut address = zero;
                        if independent {
                            input.as_mut()[..6].copy_from_slice(&[
                                pass as u64,
                                lane as u64,
                                slice as u64,
                                block_count as u64,
                                passes as u64,
                                alg as u64,
                            ]);
                        }
                        let next_address = |input: &mut Block| {
                            input.as_mut()[6] += 1;
                            let a = compress(&zero, &load(input));
                            compress(&zero, &a)
                        };
                        let first = if pass == 0 && slice == 0 {
                            if independent {
                                address = next_address(&mut input);
                            }
                            2
                        } else {
                            0
                        };
                        let base = lane * lane_length + slice * segment_length;
                        let prev = if slice == 0 && first == 0 {
                            base + lane_length - 1
                        } else {
                            base + first - 1
                        };
                        let mut prev = load(&mem[prev]);
                        let mut words = [0u64; 128];
                        if independent {
                            store_words(&address, &mut words);
                        }
                        let with_xor = pass != 0 && version == Version::V0x13;
                        let at = |block: usize, rand: u64| {
                            ref_index(
                                rand,
                                pass,
                                slice,
                                lane,
                                block,
                                lanes,
                                lane_length,
                                segment_length,
                            )
                        };
                        for block in first..segment_length {
                            let cur = base + block;
                            let rand = if independent {
                                let i = block % 128;
                                if i == 0 {
                                    address = next_address(&mut input);
                                    store_words(&address, &mut words);
                                }
                                // Addresses are known ahead: fetch the next
                                // block's reference while this one is made.
                                if i + 1 < 128 && block + 1 < segment_length {
                                    prefetch(&mem[at(block + 1, words[i + 1])]);
                                }
                                words[i]
                            } else {
                                word0(&prev)
                            };
                            let x = xor(&prev, &load(&mem[at(block, rand)]));
                            let old = if with_xor { load(&mem[cur]) } else { zero };
                            let mut q = x;
                            rows(&mut q);
                            columns_first(&mut q);
                            if !independent && block + 1 < segment_length {
                                // Word 0 of this block is final: the next
                                // block's reference can be fetched while the
                                // rest of this one is computed.
                                let w = first_word(&q, &x, &old);
                                prefetch(&mem[at(block + 1, w)]);
                            }
                            columns_rest(&mut q);
                            let mut next = xor(&q, &x);
                            if with_xor {
                                next = xor(&next, &old);
                            }
                            store(&next, &mut mem[cur]);
                            prev = next;
                        }
                    }
                }
            }
            true
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{Algorithm, Block, Params, SYNC_POINTS, Version, ref_index};
    use core::arch::x86_64::*;

    /// A block in sixteen 512-bit registers: register `k` holds words
    /// `8k..8k+8`.
    type State = [__m512i; 16];

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn load(b: &Block) -> State {
        let p = b.as_ref().as_ptr().cast::<__m512i>();
        // SAFETY: a Block is 128 u64 words (1 KiB, 64-byte aligned), so
        // `p.add(k)` for k < 16 reads inside it; the unaligned load has no
        // alignment requirement anyway.
        core::array::from_fn(|k| unsafe { _mm512_loadu_si512(p.add(k)) })
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn store(s: &State, b: &mut Block) {
        let p = b.as_mut().as_mut_ptr().cast::<__m512i>();
        for (k, v) in s.iter().enumerate() {
            // SAFETY: as in `load`, inside the block, which `&mut` makes ours.
            unsafe { _mm512_storeu_si512(p.add(k), *v) }
        }
    }

    /// x + y + 2·lo32(x)·lo32(y), lane by lane: BlaMka's multiplication.
    macro_rules! muladd {
        ($x:expr, $y:expr) => {{
            let z = _mm512_mul_epu32($x, $y);
            _mm512_add_epi64(_mm512_add_epi64($x, $y), _mm512_add_epi64(z, z))
        }};
    }

    /// Half of G on eight 64-bit lanes, for the columns: four columns at
    /// once (one per 128-bit lane, with its pair register). The rows run
    /// the same steps on four sets at once (`rows`).
    macro_rules! half_g {
        ($a:ident, $b:ident, $c:ident, $d:ident, $r1:literal, $r2:literal) => {
            $a = muladd!($a, $b);
            $d = _mm512_ror_epi64::<$r1>(_mm512_xor_si512($d, $a));
            $c = muladd!($c, $d);
            $b = _mm512_ror_epi64::<$r2>(_mm512_xor_si512($b, $c));
        };
    }

    /// P over the rows of `q` (the block R of RFC 9106 §3.5). Row r is
    /// words 16r..16r+16, i.e. registers 2r (v0..v7) and 2r+1 (v8..v15).
    /// Rows 2i and 2i+1 share a set of four registers, one per 256-bit
    /// half: `a` holds words v0..v3 of each, `b` v4..v7, `c` v8..v11, `d`
    /// v12..v15. The four sets run in lockstep, each step of G issued for
    /// all four before the next: one set after another left the CPU waiting
    /// on each step's latency (12% slower on Zen 4, BENCHMARKS.md item 20).
    ///
    /// Indexed loops, not iterators: the same steps written with iterators
    /// over `s` compiled to a schedule 9% slower on Zen 4 (measured: 125
    /// against 114 ns a block in the L2 cache).
    #[allow(clippy::needless_range_loop)]
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn rows(q: &mut State) {
        let mut s: [[__m512i; 4]; 4] = core::array::from_fn(|i| {
            let (x0, x1) = (q[4 * i], q[4 * i + 1]);
            let (y0, y1) = (q[4 * i + 2], q[4 * i + 3]);
            [
                _mm512_shuffle_i64x2::<0x44>(x0, y0),
                _mm512_shuffle_i64x2::<0xEE>(x0, y0),
                _mm512_shuffle_i64x2::<0x44>(x1, y1),
                _mm512_shuffle_i64x2::<0xEE>(x1, y1),
            ]
        });
        /// Half of G on every set, step by step.
        macro_rules! half_g4 {
            ($r1:literal, $r2:literal) => {
                for i in 0..4 {
                    s[i][0] = muladd!(s[i][0], s[i][1]);
                }
                for i in 0..4 {
                    s[i][3] = _mm512_ror_epi64::<$r1>(_mm512_xor_si512(s[i][3], s[i][0]));
                }
                for i in 0..4 {
                    s[i][2] = muladd!(s[i][2], s[i][3]);
                }
                for i in 0..4 {
                    s[i][1] = _mm512_ror_epi64::<$r2>(_mm512_xor_si512(s[i][1], s[i][2]));
                }
            };
        }
        half_g4!(32, 24);
        half_g4!(16, 63);
        // Diagonals: lane j of b/c/d moves to j-1/j-2/j-3.
        for i in 0..4 {
            s[i][1] = _mm512_permutex_epi64::<0b00_11_10_01>(s[i][1]);
            s[i][2] = _mm512_permutex_epi64::<0b01_00_11_10>(s[i][2]);
            s[i][3] = _mm512_permutex_epi64::<0b10_01_00_11>(s[i][3]);
        }
        half_g4!(32, 24);
        half_g4!(16, 63);
        // And back.
        for i in 0..4 {
            s[i][1] = _mm512_permutex_epi64::<0b10_01_00_11>(s[i][1]);
            s[i][2] = _mm512_permutex_epi64::<0b01_00_11_10>(s[i][2]);
            s[i][3] = _mm512_permutex_epi64::<0b00_11_10_01>(s[i][3]);
        }
        for i in 0..4 {
            let [a, b, c, d] = s[i];
            q[4 * i] = _mm512_shuffle_i64x2::<0x44>(a, b);
            q[4 * i + 2] = _mm512_shuffle_i64x2::<0xEE>(a, b);
            q[4 * i + 1] = _mm512_shuffle_i64x2::<0x44>(c, d);
            q[4 * i + 3] = _mm512_shuffle_i64x2::<0xEE>(c, d);
        }
    }

    /// The column rounds' moves (`columns` in [`kernel_common!`]): a
    /// row is two registers here, four columns per register (one per
    /// 128-bit lane).
    const STRIDE: usize = 2;

    /// Each 128-bit lane of `x`, with its first word (`take_first!`) or
    /// its second (`take_second!`) from `y`: one blend.
    macro_rules! take_first {
        ($x:expr, $y:expr) => {
            _mm512_mask_blend_epi64(0x55, $x, $y)
        };
    }
    macro_rules! take_second {
        ($x:expr, $y:expr) => {
            _mm512_mask_blend_epi64(0xAA, $x, $y)
        };
    }

    /// Swaps the two words of each 128-bit lane. One in-lane shuffle.
    macro_rules! swap_words {
        ($x:expr) => {
            _mm512_shuffle_epi32::<_MM_PERM_BADC>($x)
        };
    }

    /// The columns that hold word 0 (0..4).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn columns_first(q: &mut State) {
        columns(q, 0);
    }

    /// The other columns (4..8).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn columns_rest(q: &mut State) {
        columns(q, 1);
    }

    /// Word 0 of `q ⊕ x ⊕ old`: of the next block, once `columns_first`
    /// has run.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn first_word(q: &State, x: &State, old: &State) -> u64 {
        let w = _mm512_xor_si512(_mm512_xor_si512(q[0], x[0]), old[0]);
        _mm_cvtsi128_si64(_mm512_castsi512_si128(w)) as u64
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn xor(x: &State, y: &State) -> State {
        core::array::from_fn(|k| _mm512_xor_si512(x[k], y[k]))
    }

    /// The first 64-bit word of a block in registers.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn word0(s: &State) -> u64 {
        _mm_cvtsi128_si64(_mm512_castsi512_si128(s[0])) as u64
    }

    kernel_common!("avx512f");

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn store_words(s: &State, words: &mut [u64; 128]) {
        let p = words.as_mut_ptr().cast::<__m512i>();
        for (k, v) in s.iter().enumerate() {
            // SAFETY: 128 words are 16 registers' worth; unaligned store.
            unsafe { _mm512_storeu_si512(p.add(k), *v) }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! The same kernel in 256-bit registers, for CPUs with AVX2 but not
    //! AVX-512F (most laptops and desktops, older servers). A block is 32
    //! registers here, more than the CPU has, so it lives on the stack
    //! between rounds; rotates are byte shuffles, as AVX2 has no 64-bit
    //! rotate.
    use super::{Algorithm, Block, Params, SYNC_POINTS, Version, ref_index};
    use core::arch::x86_64::*;

    /// A block in thirty-two 256-bit registers: register `k` holds words
    /// `4k..4k+4`.
    type State = [__m256i; 32];

    #[inline]
    #[target_feature(enable = "avx2")]
    fn load(b: &Block) -> State {
        let p = b.as_ref().as_ptr().cast::<__m256i>();
        // SAFETY: a Block is 128 u64 words (1 KiB), so `p.add(k)` for
        // k < 32 reads inside it; the unaligned load needs no alignment.
        core::array::from_fn(|k| unsafe { _mm256_loadu_si256(p.add(k)) })
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn store(s: &State, b: &mut Block) {
        let p = b.as_mut().as_mut_ptr().cast::<__m256i>();
        for (k, v) in s.iter().enumerate() {
            // SAFETY: as in `load`, inside the block, which `&mut` makes ours.
            unsafe { _mm256_storeu_si256(p.add(k), *v) }
        }
    }

    /// x + y + 2·lo32(x)·lo32(y), lane by lane: BlaMka's multiplication.
    macro_rules! muladd {
        ($x:expr, $y:expr) => {{
            let z = _mm256_mul_epu32($x, $y);
            _mm256_add_epi64(_mm256_add_epi64($x, $y), _mm256_add_epi64(z, z))
        }};
    }

    /// 64-bit right rotates by 32, 24, 16 (whole bytes: one shuffle each)
    /// and 63 (a left rotate by one: a shift and an add).
    macro_rules! ror {
        ($x:expr, 32) => {
            _mm256_shuffle_epi32::<0b10_11_00_01>($x)
        };
        ($x:expr, 24) => {
            _mm256_shuffle_epi8(
                $x,
                _mm256_setr_epi8(
                    3, 4, 5, 6, 7, 0, 1, 2, 11, 12, 13, 14, 15, 8, 9, 10, 3, 4, 5, 6, 7, 0, 1, 2,
                    11, 12, 13, 14, 15, 8, 9, 10,
                ),
            )
        };
        ($x:expr, 16) => {
            _mm256_shuffle_epi8(
                $x,
                _mm256_setr_epi8(
                    2, 3, 4, 5, 6, 7, 0, 1, 10, 11, 12, 13, 14, 15, 8, 9, 2, 3, 4, 5, 6, 7, 0, 1,
                    10, 11, 12, 13, 14, 15, 8, 9,
                ),
            )
        };
        ($x:expr, 63) => {{
            let x = $x;
            _mm256_xor_si256(_mm256_srli_epi64::<63>(x), _mm256_add_epi64(x, x))
        }};
    }

    /// Half of G on four 64-bit lanes.
    macro_rules! half_g {
        ($a:ident, $b:ident, $c:ident, $d:ident, $r1:tt, $r2:tt) => {
            $a = muladd!($a, $b);
            $d = ror!(_mm256_xor_si256($d, $a), $r1);
            $c = muladd!($c, $d);
            $b = ror!(_mm256_xor_si256($b, $c), $r2);
        };
    }

    /// P (RFC 9106 §3.6) on two inputs in lockstep, each step of G issued
    /// for both before the next (one after the other left the CPU waiting
    /// on each step's latency: 6% slower, BENCHMARKS.md item 20). For each
    /// input, `a` holds its words v0..v3, `b` v4..v7, `c` v8..v11, `d`
    /// v12..v15.
    macro_rules! round2 {
        ($a0:ident, $b0:ident, $c0:ident, $d0:ident,
         $a1:ident, $b1:ident, $c1:ident, $d1:ident) => {
            half_g!($a0, $b0, $c0, $d0, 32, 24);
            half_g!($a1, $b1, $c1, $d1, 32, 24);
            half_g!($a0, $b0, $c0, $d0, 16, 63);
            half_g!($a1, $b1, $c1, $d1, 16, 63);
            // Diagonals: lane j of b/c/d moves to j-1/j-2/j-3.
            $b0 = _mm256_permute4x64_epi64::<0b00_11_10_01>($b0);
            $c0 = _mm256_permute4x64_epi64::<0b01_00_11_10>($c0);
            $d0 = _mm256_permute4x64_epi64::<0b10_01_00_11>($d0);
            $b1 = _mm256_permute4x64_epi64::<0b00_11_10_01>($b1);
            $c1 = _mm256_permute4x64_epi64::<0b01_00_11_10>($c1);
            $d1 = _mm256_permute4x64_epi64::<0b10_01_00_11>($d1);
            half_g!($a0, $b0, $c0, $d0, 32, 24);
            half_g!($a1, $b1, $c1, $d1, 32, 24);
            half_g!($a0, $b0, $c0, $d0, 16, 63);
            half_g!($a1, $b1, $c1, $d1, 16, 63);
            // And back.
            $b0 = _mm256_permute4x64_epi64::<0b10_01_00_11>($b0);
            $c0 = _mm256_permute4x64_epi64::<0b01_00_11_10>($c0);
            $d0 = _mm256_permute4x64_epi64::<0b00_11_10_01>($d0);
            $b1 = _mm256_permute4x64_epi64::<0b10_01_00_11>($b1);
            $c1 = _mm256_permute4x64_epi64::<0b01_00_11_10>($c1);
            $d1 = _mm256_permute4x64_epi64::<0b00_11_10_01>($d1);
        };
    }

    /// P over the rows of `q` (the block R of RFC 9106 §3.5). Row r is
    /// words 16r..16r+16, i.e. registers 4r..4r+4; two rows run together.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn rows(q: &mut State) {
        for r in (0..8).step_by(2) {
            let [mut a0, mut b0, mut c0, mut d0] =
                [q[4 * r], q[4 * r + 1], q[4 * r + 2], q[4 * r + 3]];
            let [mut a1, mut b1, mut c1, mut d1] =
                [q[4 * r + 4], q[4 * r + 5], q[4 * r + 6], q[4 * r + 7]];
            round2!(a0, b0, c0, d0, a1, b1, c1, d1);
            [q[4 * r], q[4 * r + 1], q[4 * r + 2], q[4 * r + 3]] = [a0, b0, c0, d0];
            [q[4 * r + 4], q[4 * r + 5], q[4 * r + 6], q[4 * r + 7]] = [a1, b1, c1, d1];
        }
    }

    /// The column rounds' moves (`columns` in [`kernel_common!`]): a
    /// row is four registers here, two columns per register (one per
    /// 128-bit half).
    const STRIDE: usize = 4;

    /// Each 128-bit half of `x`, with its first word (`take_first!`) or
    /// its second (`take_second!`) from `y`: one blend.
    macro_rules! take_first {
        ($x:expr, $y:expr) => {
            _mm256_blend_epi32::<0x33>($x, $y)
        };
    }
    macro_rules! take_second {
        ($x:expr, $y:expr) => {
            _mm256_blend_epi32::<0xCC>($x, $y)
        };
    }

    /// Swaps the two words of each 128-bit half: (w0, w1, w2, w3) becomes
    /// (w1, w0, w3, w2). One in-lane shuffle.
    macro_rules! swap_words {
        ($x:expr) => {
            _mm256_shuffle_epi32::<0b01_00_11_10>($x)
        };
    }

    /// The columns that hold word 0 (0 and 1).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn columns_first(q: &mut State) {
        columns(q, 0);
    }

    /// The other columns (2..8).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn columns_rest(q: &mut State) {
        columns(q, 1);
        columns(q, 2);
        columns(q, 3);
    }

    /// Word 0 of `q ⊕ x ⊕ old`: of the next block, once `columns_first`
    /// has run.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn first_word(q: &State, x: &State, old: &State) -> u64 {
        let w = _mm256_xor_si256(_mm256_xor_si256(q[0], x[0]), old[0]);
        _mm_cvtsi128_si64(_mm256_castsi256_si128(w)) as u64
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn xor(x: &State, y: &State) -> State {
        core::array::from_fn(|k| _mm256_xor_si256(x[k], y[k]))
    }

    /// The first 64-bit word of a block in registers.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn word0(s: &State) -> u64 {
        _mm_cvtsi128_si64(_mm256_castsi256_si128(s[0])) as u64
    }

    kernel_common!("avx2");

    #[inline]
    #[target_feature(enable = "avx2")]
    fn store_words(s: &State, words: &mut [u64; 128]) {
        let p = words.as_mut_ptr().cast::<__m256i>();
        for (k, v) in s.iter().enumerate() {
            // SAFETY: 128 words are 32 registers' worth; unaligned store.
            unsafe { _mm256_storeu_si256(p.add(k), *v) }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The kernel against the `argon2` crate, in this crate so that its
    //! mutants are quick to test (`cargo mutants -p argon2-simd`).
    //! recupera's own tests (`src/domain/hash.rs`) check the same through
    //! its `Hasher`.
    use super::*;
    use argon2::{Argon2, AssociatedData, ParamsBuilder};

    /// xorshift64*: reproducible inputs from a seed printed on failure.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn bytes(&mut self, max: u64) -> Vec<u8> {
            (0..self.below(max)).map(|_| self.next() as u8).collect()
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn ours(
        kernel: Kernel,
        alg: Algorithm,
        version: Version,
        params: &Params,
        secret: Option<&[u8]>,
        pwd: &[u8],
        salt: &[u8],
        len: usize,
    ) -> Option<Vec<u8>> {
        let mut out = vec![0u8; len];
        let mut mem = vec![Block::new(); params.block_count()];
        let done = hash_with(
            kernel, None, alg, version, params, secret, pwd, salt, &mut out, &mut mem,
        )?;
        assert_eq!(done, Finished::Done, "stopped without a stop flag");
        Some(out)
    }

    /// The kernels this CPU runs, each of which the tests check.
    fn here() -> Vec<Kernel> {
        let k: Vec<Kernel> = Kernel::ALL.into_iter().filter(|k| k.runs_here()).collect();
        if k.len() < Kernel::ALL.len() {
            eprintln!("NOTE: this CPU runs only {k:?} of {:?}", Kernel::ALL);
        }
        k
    }

    /// The fastest kernel the CPU can run is chosen: a check that wrongly
    /// said no would silently hand every hash to a slower one.
    #[test]
    fn the_fastest_kernel_the_cpu_runs_is_chosen() {
        #[cfg(target_arch = "x86_64")]
        {
            let avx512 = std::arch::is_x86_feature_detected!("avx512f");
            let avx2 = std::arch::is_x86_feature_detected!("avx2");
            assert_eq!(
                Kernel::Avx512.runs_here(),
                avx512 && !cfg!(feature = "avx2-only")
            );
            assert_eq!(Kernel::Avx2.runs_here(), avx2);
            let want = if Kernel::Avx512.runs_here() {
                Some(Kernel::Avx512)
            } else if avx2 {
                Some(Kernel::Avx2)
            } else {
                None
            };
            assert_eq!(kernel(), want);
            assert_eq!(available(), want.is_some());
        }
        #[cfg(not(target_arch = "x86_64"))]
        assert!(!available() && kernel().is_none());
    }

    #[test]
    fn rfc_9106_known_answers() {
        let params = ParamsBuilder::new()
            .m_cost(32)
            .t_cost(3)
            .p_cost(4)
            .output_len(32)
            .data(AssociatedData::new(&[4u8; 12]).unwrap())
            .build()
            .unwrap();
        for (alg, tag) in [
            (
                Algorithm::Argon2d,
                "512b391b6f1162975371d30919734294f868e3be3984f3c1a13a4db9fabe4acb",
            ),
            (
                Algorithm::Argon2i,
                "c814d9d1dc7f37aa13f0d77f2494bda1c8de6b016dd388d29952a4c4672b6ce8",
            ),
            (
                Algorithm::Argon2id,
                "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659",
            ),
        ] {
            for kernel in here() {
                let out = ours(
                    kernel,
                    alg,
                    Version::V0x13,
                    &params,
                    Some(&[3; 8]),
                    &[1; 32],
                    &[2; 16],
                    32,
                )
                .unwrap();
                let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
                assert_eq!(hex, tag, "{kernel:?} {alg:?}");
            }
        }
    }

    #[test]
    fn the_argon2_crate_function_on_random_inputs() {
        // A kernel this CPU cannot run declines (the caller uses the crate).
        for kernel in Kernel::ALL.into_iter().filter(|k| !k.runs_here()) {
            let p = Params::new(64, 1, 1, None).unwrap();
            let got = ours(
                kernel,
                Algorithm::Argon2id,
                Version::V0x13,
                &p,
                None,
                b"pw",
                &[0; 16],
                32,
            );
            assert!(got.is_none(), "{kernel:?}");
        }
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1;
        let mut rng = Rng(seed);
        let kernels = here();
        for case in 0..150 {
            let p = 1 + rng.below(4) as u32;
            let alg = [Algorithm::Argon2d, Algorithm::Argon2i, Algorithm::Argon2id]
                [rng.below(3) as usize];
            let version = [Version::V0x10, Version::V0x13][rng.below(2) as usize];
            let m = 8 * p + rng.below(600) as u32;
            let t = 1 + rng.below(4) as u32;
            let len = [4, 16, 32, 63, 64, 65, 100, 128, 1024][rng.below(9) as usize];
            let pwd = rng.bytes(80);
            let salt: Vec<u8> = (0..8 + rng.below(32)).map(|_| rng.next() as u8).collect();
            let secret = (rng.below(2) == 1).then(|| rng.bytes(40));
            let data = rng.bytes(20);
            let params = ParamsBuilder::new()
                .m_cost(m)
                .t_cost(t)
                .p_cost(p)
                .data(AssociatedData::new(&data).unwrap())
                .build()
                .unwrap();
            let a = match &secret {
                Some(k) => Argon2::new_with_secret(k, alg, version, params.clone()).unwrap(),
                None => Argon2::new(alg, version, params.clone()),
            };
            let mut want = vec![0u8; len];
            a.hash_password_into(&pwd, &salt, &mut want).unwrap();
            for &kernel in &kernels {
                let what = format!(
                    "seed {seed} case {case}: {kernel:?} {alg:?} {version:?} m={m} t={t} p={p} out={len}"
                );
                let got = ours(
                    kernel,
                    alg,
                    version,
                    &params,
                    secret.as_deref(),
                    &pwd,
                    &salt,
                    len,
                );
                assert_eq!(got.as_ref(), Some(&want), "{what}");
            }
        }
        // The production parameters once.
        let params = Params::new(19_456, 2, 1, None).unwrap();
        let mut want = [0u8; 32];
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
            .hash_password_into(b"correct horse", b"saltsaltsalt", &mut want)
            .unwrap();
        for &kernel in &kernels {
            let got = ours(
                kernel,
                Algorithm::Argon2id,
                Version::V0x13,
                &params,
                None,
                b"correct horse",
                b"saltsaltsalt",
                32,
            );
            assert_eq!(got.as_deref(), Some(&want[..]), "{kernel:?}");
        }
    }

    #[test]
    fn inputs_the_crate_refuses_are_left_to_it() {
        let p = Params::new(64, 1, 1, None).unwrap();
        let run = |salt: &[u8], len: usize, blocks: usize, secret: Option<&[u8]>| {
            let mut out = vec![0u8; len];
            let mut mem = vec![Block::new(); blocks];
            hash_into(
                Algorithm::Argon2id,
                Version::V0x13,
                &p,
                secret,
                b"pw",
                salt,
                &mut out,
                &mut mem,
            )
        };
        assert!(run(&[0; 7], 32, 64, None).is_none(), "short salt");
        assert!(run(&[0; 16], 3, 64, None).is_none(), "short output");
        assert!(run(&[0; 16], 32, 63, None).is_none(), "too little memory");
        let fixed = ParamsBuilder::new()
            .m_cost(64)
            .output_len(32)
            .build()
            .unwrap();
        let mut mem = vec![Block::new(); 64];
        let mut out = [0u8; 31];
        assert!(
            hash_into(
                Algorithm::Argon2id,
                Version::V0x13,
                &fixed,
                None,
                b"pw",
                &[0; 16],
                &mut out,
                &mut mem
            )
            .is_none(),
            "an output length other than the one fixed in the parameters"
        );
        assert_eq!(run(&[0; 16], 32, 64, None).is_some(), available());
        for kernel in here() {
            let mut out = [0u8; 32];
            let mut mem = vec![Block::new(); 63];
            let short = hash_with(
                kernel,
                None,
                Algorithm::Argon2id,
                Version::V0x13,
                &p,
                None,
                b"pw",
                &[0; 16],
                &mut out,
                &mut mem,
            );
            assert!(short.is_none(), "{kernel:?}: too little memory");
        }
    }

    /// A hash that may be stopped: unstopped, the same tag as
    /// `hash_into`; with `stop` already set, given up before its first
    /// segment (the output untouched); set by another thread while it
    /// runs, given up before its end.
    #[test]
    fn a_stopped_hash_gives_up_and_writes_nothing() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let (alg, v) = (Algorithm::Argon2id, Version::V0x13);
        let run = |kernel, stop: &AtomicBool, p: &Params, out: &mut [u8]| {
            let mut mem = vec![Block::new(); p.block_count()];
            hash_with(
                kernel,
                Some(stop),
                alg,
                v,
                p,
                None,
                b"pw",
                &[7; 16],
                out,
                &mut mem,
            )
        };
        let p = Params::new(256, 3, 1, Some(32)).unwrap();
        for kernel in here() {
            let want = ours(kernel, alg, v, &p, None, b"pw", &[7; 16], 32).unwrap();
            let mut out = [0u8; 32];
            let never = AtomicBool::new(false);
            assert_eq!(run(kernel, &never, &p, &mut out), Some(Finished::Done));
            assert_eq!(out.to_vec(), want, "{kernel:?}");
            let mut out = [0u8; 32];
            let set = AtomicBool::new(true);
            assert_eq!(run(kernel, &set, &p, &mut out), Some(Finished::Stopped));
            assert_eq!(
                out, [0u8; 32],
                "{kernel:?}: a stopped hash wrote its output"
            );

            // Set while it runs: 2048 passes over 1 MiB (two million
            // blocks, a quarter of a second on a fast CPU), the flag set
            // 5 ms in; a hash that missed it would end `Done`, however
            // slow or fast the machine.
            let long = Params::new(1024, 2048, 1, Some(32)).unwrap();
            let stop = AtomicBool::new(false);
            let ended = std::thread::scope(|s| {
                let h = s.spawn(|| run(kernel, &stop, &long, &mut [0u8; 32]));
                std::thread::sleep(std::time::Duration::from_millis(5));
                stop.store(true, Ordering::Relaxed);
                h.join().unwrap()
            });
            assert_eq!(ended, Some(Finished::Stopped), "{kernel:?}");
        }
        // The public entry, with the kernel this CPU runs: `hash_into`'s
        // tag unstopped, nothing written stopped.
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        let mut mem = vec![Block::new(); p.block_count()];
        let never = AtomicBool::new(false);
        let ours = hash_into_unless(&never, alg, v, &p, None, b"pw", &[7; 16], &mut a, &mut mem);
        let plain = hash_into(alg, v, &p, None, b"pw", &[7; 16], &mut b, &mut mem);
        assert_eq!(ours.is_some(), plain.is_some());
        assert_eq!(ours.is_some(), available());
        if ours.is_some() {
            assert_eq!(ours, Some(Finished::Done));
            assert_eq!(a, b);
            let set = AtomicBool::new(true);
            let mut c = [0u8; 32];
            let r = hash_into_unless(&set, alg, v, &p, None, b"pw", &[7; 16], &mut c, &mut mem);
            assert_eq!((r, c), (Some(Finished::Stopped), [0u8; 32]));
        }
    }
}
