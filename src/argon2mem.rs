//! Working memory for argon2: its 19 MiB come from one dedicated mapping,
//! backed by transparent huge pages and faulted in ahead of time.
//!
//! Why: every `login` and `reset confirm` is a short process whose cost is
//! dominated by one argon2id evaluation. From the allocator, 19 MiB of fresh
//! 4 KiB pages cost ~4,900 page faults per hash; one 2 MiB-aligned mapping
//! with `MADV_HUGEPAGE` costs about ten. [`prefault`] makes the mapping on
//! another thread as soon as the process starts and hands it over once its
//! first huge page is in; that thread then faults the rest in with
//! `MADV_POPULATE_WRITE`, in the order the hash writes it, so the kernel's
//! zeroing runs ahead of the hash instead of before it.
//!
//! Invariants:
//! - This is the program's only unsafe memory management, and it touches
//!   only these mappings: every other allocation is the system allocator's.
//! - Faulting pages in never reads or writes their contents, so it may run
//!   while a hash writes into the same region.
//! - A region is used by one hash at a time (taken from the pool, put back
//!   after); hashes on several threads at once (`user import --invite`,
//!   `mail retry`) get a region each. A hash made beside another one
//!   ([`with_free_blocks`]: `reset confirm`'s new password, made while the
//!   code is checked) takes a free region or maps its own, faulted in as it
//!   writes, and never waits for the region being prepared for the other.
//! - Argon2 writes every block before reading it, so a region reused by a
//!   later hash needs no clearing; regions are unmapped at exit.
//! - When a mapping cannot be made (or off Linux), the hash runs in
//!   ordinary heap memory: slower, never wrong.

use argon2::Block;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;

#[cfg(target_os = "linux")]
mod region {
    use argon2::Block;

    const HUGE: usize = 2 << 20;

    /// One anonymous private mapping of `blocks` argon2 blocks.
    pub struct Region {
        ptr: *mut Block,
        blocks: usize,
        base: *mut libc::c_void,
        len: usize,
    }

    // SAFETY: the region is plain memory owned by whoever holds the value;
    // it is never shared between threads while in use.
    unsafe impl Send for Region {}

    impl Region {
        /// Maps, advises huge pages, and (best effort) faults it all in.
        pub fn new(blocks: usize) -> Option<Region> {
            let r = Region::map(blocks)?;
            if !r.populate(0, r.bytes()) {
                r.touch();
            }
            Some(r)
        }

        /// Maps `blocks` blocks, 2 MiB-aligned, advised to be backed by
        /// huge pages; nothing is faulted in yet.
        pub fn map(blocks: usize) -> Option<Region> {
            let bytes = blocks.checked_mul(std::mem::size_of::<Block>())?;
            let len = bytes.checked_add(HUGE)?;
            // SAFETY: an anonymous private mapping; no existing memory is touched.
            let base = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            if base == libc::MAP_FAILED {
                return None;
            }
            let aligned = (base as usize).div_ceil(HUGE) * HUGE;
            // SAFETY: [aligned, aligned + bytes) lies inside the mapping just
            // made; the advice only changes how its pages are backed.
            unsafe {
                libc::madvise(aligned as *mut libc::c_void, bytes, libc::MADV_HUGEPAGE);
            }
            Some(Region {
                ptr: aligned as *mut Block,
                blocks,
                base,
                len,
            })
        }

        pub fn bytes(&self) -> usize {
            self.blocks * std::mem::size_of::<Block>()
        }

        /// Where the blocks start, for [`populate_at`] on another thread.
        pub fn addr(&self) -> usize {
            self.ptr as usize
        }

        /// Faults in `[from, to)` (byte offsets) without touching the
        /// contents; false when the kernel cannot (before Linux 5.14).
        pub fn populate(&self, from: usize, to: usize) -> bool {
            populate_at(self.addr(), from, to.min(self.bytes()))
        }

        /// Faults every page in by writing one byte to it (the fallback
        /// for kernels without `MADV_POPULATE_WRITE`), before any hash
        /// uses the region.
        fn touch(&self) {
            let p = self.ptr.cast::<u8>();
            let mut off = 0;
            while off < self.bytes() {
                // SAFETY: inside the mapping, which no one else uses yet.
                unsafe { p.add(off).write_volatile(0) };
                off += 4096;
            }
        }

        pub fn blocks(&self) -> usize {
            self.blocks
        }

        pub fn slice(&mut self) -> &mut [Block] {
            // SAFETY: `ptr` points at `blocks` blocks inside our mapping,
            // 2 MiB-aligned (so aligned for Block), zero-filled or written
            // by an earlier hash (every bit pattern is a valid Block), and
            // `&mut self` makes this the only reference.
            unsafe { std::slice::from_raw_parts_mut(self.ptr, self.blocks) }
        }
    }

    /// `MADV_POPULATE_WRITE` over `[from, to)` of the blocks at `addr`:
    /// page tables and zeroed pages are made as a write would make them,
    /// but no byte is read or written, so it may run while a hash writes
    /// into the same pages (a present page is left as it is).
    pub fn populate_at(addr: usize, from: usize, to: usize) -> bool {
        if from >= to {
            return true;
        }
        // SAFETY: the caller names a range of a live region's mapping;
        // the advice changes no contents.
        unsafe {
            libc::madvise(
                (addr + from) as *mut libc::c_void,
                to - from,
                libc::MADV_POPULATE_WRITE,
            ) == 0
        }
    }

    /// Maps `count` regions and hands each over through `tx` as soon as
    /// its first huge page is in, then faults the rest in, huge page by huge
    /// page, in the order a hash writes them (all regions side by side, for
    /// hashes that run at once). A hash that overtakes
    /// this thread takes its own page faults; the two never wait for each
    /// other otherwise. Without `MADV_POPULATE_WRITE` a region is touched
    /// all over before it is handed over.
    pub fn prepare(blocks: usize, count: usize, tx: std::sync::mpsc::Sender<Region>) {
        let mut live = Vec::new();
        for _ in 0..count {
            let Some(r) = Region::map(blocks) else { break };
            if r.populate(0, HUGE) {
                live.push((r.addr(), r.bytes()));
            } else {
                r.touch();
            }
            if tx.send(r).is_err() {
                return;
            }
        }
        drop(tx);
        let mut off = HUGE;
        while live.iter().any(|&(_, n)| off < n) {
            for &(addr, n) in &live {
                populate_at(addr, off, (off + HUGE).min(n));
            }
            off += HUGE;
        }
    }

    impl Drop for Region {
        fn drop(&mut self) {
            // SAFETY: `base`/`len` are exactly what mmap returned.
            unsafe {
                libc::munmap(self.base, self.len);
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod region {
    use argon2::Block;

    pub struct Region(Vec<Block>);

    impl Region {
        pub fn new(blocks: usize) -> Option<Region> {
            Some(Region(vec![Block::new(); blocks]))
        }

        pub fn map(blocks: usize) -> Option<Region> {
            Region::new(blocks)
        }

        pub fn blocks(&self) -> usize {
            self.0.len()
        }

        pub fn slice(&mut self) -> &mut [Block] {
            &mut self.0
        }
    }

    pub fn prepare(blocks: usize, count: usize, tx: std::sync::mpsc::Sender<Region>) {
        for _ in 0..count {
            if tx.send(Region(vec![Block::new(); blocks])).is_err() {
                return;
            }
        }
    }
}

use region::Region;

/// Regions not in use, ready for the next hash.
static POOL: Mutex<Vec<Region>> = Mutex::new(Vec::new());

/// Regions being prepared in the background by [`prefault`]: each arrives
/// once mapped, its pages still being faulted in on that thread.
static PENDING: Mutex<Option<Receiver<Region>>> = Mutex::new(None);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A free region of `blocks` blocks from the pool, if there is one.
fn pooled(blocks: usize) -> Option<Region> {
    let mut pool = lock(&POOL);
    let i = pool.iter().position(|r| r.blocks() == blocks)?;
    Some(pool.swap_remove(i))
}

fn take(blocks: usize) -> Option<Region> {
    if let Some(r) = pooled(blocks) {
        return Some(r);
    }
    // Held while waiting: two hashes at once receive one region each.
    let mut pending = lock(&PENDING);
    if let Some(rx) = pending.as_ref() {
        while let Ok(r) = rx.recv() {
            if r.blocks() == blocks {
                return Some(r);
            }
            lock(&POOL).push(r);
        }
        // All handed over: a later `prefault` may start another batch.
        *pending = None;
    }
    drop(pending);
    Region::new(blocks)
}

/// Runs `f` with `blocks` blocks of argon2 working memory.
pub fn with_blocks<R>(blocks: usize, f: impl FnOnce(&mut [Block]) -> R) -> R {
    run_in(take(blocks), blocks, f)
}

/// Runs `f` in `region` (then back to the pool), or in heap memory.
fn run_in<R>(region: Option<Region>, blocks: usize, f: impl FnOnce(&mut [Block]) -> R) -> R {
    match region {
        Some(mut r) => {
            let out = f(r.slice());
            lock(&POOL).push(r);
            out
        }
        None => f(&mut vec![Block::new(); blocks]),
    }
}

/// Runs `f` in a free region from the pool, or else in a new one faulted
/// in as `f` writes it (on the calling thread), never waiting for the one
/// being prepared: for a hash computed beside the one that region is for.
/// The region goes to the pool afterwards.
pub fn with_free_blocks<R>(blocks: usize, f: impl FnOnce(&mut [Block]) -> R) -> R {
    run_in(pooled(blocks).or_else(|| Region::map(blocks)), blocks, f)
}

/// Starts preparing `count` regions on another thread (mapping them and
/// faulting their pages in), so the process's first hashes find their
/// memory ready, or being made ready just ahead of them. A process that
/// cannot start a thread simply does without.
pub fn prefault(blocks: usize, count: usize) {
    if crate::ops::spawn_refused() {
        return;
    }
    let mut pending = lock(&PENDING);
    if pending.is_some() {
        return;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    PREPARING.fetch_add(1, Ordering::SeqCst);
    let job = move || {
        region::prepare(blocks, count, tx);
        PREPARING.fetch_sub(1, Ordering::SeqCst);
    };
    if std::thread::Builder::new().spawn(job).is_ok() {
        *pending = Some(rx);
    } else {
        PREPARING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// [`prefault`] threads still faulting pages in (each ends within ~2 ms).
static PREPARING: AtomicUsize = AtomicUsize::new(0);

/// Whether a thread started now would have a CPU to itself: fewer threads
/// ready to run on the machine (the kernel's count at this instant, this
/// one included, a [`prefault`] thread that is about to end not) than
/// CPUs this process may use. On a machine already busy (other processes,
/// several confirmations at once) a second thread would only take CPU
/// from them. Where it cannot be told (no `/proc`), any machine with two
/// CPUs or more is taken to have one.
pub fn spare_cpu() -> bool {
    // Only the test build can be told (`RECUPERA_TEST_SPARE_CPU=1|0`), so
    // that both ways of a confirmation are tested on any machine.
    #[cfg(feature = "test-clock")]
    if let Some(v) = std::env::var_os("RECUPERA_TEST_SPARE_CPU") {
        return v == "1";
    }
    let ready = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| ready_threads(&s));
    free_cpu(ready, PREPARING.load(Ordering::SeqCst), cpus())
}

/// [`spare_cpu`]'s rule: `ready` threads ready to run (`None`: not known),
/// `preparing` of them ours and about to end, `cpus` CPUs.
fn free_cpu(ready: Option<usize>, preparing: usize, cpus: usize) -> bool {
    match ready {
        Some(n) => n.saturating_sub(preparing) < cpus,
        None => cpus >= 2,
    }
}

/// The threads ready to run, from `/proc/loadavg`'s fourth field
/// (`ready/existing`).
fn ready_threads(loadavg: &str) -> Option<usize> {
    loadavg
        .split_whitespace()
        .nth(3)?
        .split('/')
        .next()?
        .parse()
        .ok()
}

/// The CPUs this process may run on.
fn cpus() -> usize {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `set` is a plain bit set the call fills in; its size is
        // the one passed.
        let n = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0 {
                libc::CPU_COUNT(&set)
            } else {
                0
            }
        };
        if let Ok(n) = usize::try_from(n)
            && n > 0
        {
            return n;
        }
    }
    std::thread::available_parallelism().map_or(1, usize::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_threads_are_read_from_loadavg() {
        assert_eq!(ready_threads("0.89 0.70 0.50 2/150 12345\n"), Some(2));
        assert_eq!(ready_threads("0.00 0.01 0.05 17/1204 9"), Some(17));
        assert_eq!(ready_threads("0.89 0.70 0.50"), None);
        assert_eq!(ready_threads("0.89 0.70 0.50 x/150 1"), None);
    }

    /// A thread only where it would have a CPU to itself: the one asking
    /// is ready too, a preparing thread about to end is not counted.
    #[test]
    fn a_cpu_is_free_when_fewer_threads_are_ready_than_cpus() {
        assert!(free_cpu(Some(1), 0, 2), "only the asking thread ready");
        assert!(!free_cpu(Some(2), 0, 2), "another thread ready");
        assert!(free_cpu(Some(2), 1, 2), "the other is our preparing one");
        assert!(!free_cpu(Some(3), 1, 2));
        assert!(!free_cpu(Some(1), 0, 1), "one CPU: never");
        assert!(free_cpu(Some(3), 0, 4));
        assert!(free_cpu(None, 0, 2) && !free_cpu(None, 0, 1));
    }

    /// The CPUs this process may use, as the kernel lists them in
    /// `/proc/self/status` ("0-1", "0,2-3").
    #[test]
    fn the_cpus_counted_are_the_ones_this_process_may_use() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let list = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .unwrap()
            .trim();
        let listed: usize = list
            .split(',')
            .map(|r| match r.split_once('-') {
                Some((a, b)) => b.parse::<usize>().unwrap() - a.parse::<usize>().unwrap() + 1,
                None => 1,
            })
            .sum();
        assert_eq!(cpus(), listed, "{list}");
    }

    #[test]
    fn regions_are_reused_and_sized() {
        prefault(64, 1);
        let a = with_blocks(64, |b| {
            assert_eq!(b.len(), 64);
            b[63] = Block::new();
            b.as_ptr() as usize
        });
        let b = with_blocks(64, |b| b.as_ptr() as usize);
        assert_eq!(a, b, "the region came back to the pool");
        // Two at once get two regions.
        with_blocks(64, |x| {
            let y = with_blocks(64, |y| y.as_ptr() as usize);
            assert_ne!(x.as_ptr() as usize, y);
        });
        assert_eq!(with_blocks(8, |b| b.len()), 8);
    }

    /// A region handed over while its pages are still being faulted in
    /// on the preparing thread gives the hash the argon2 crate computes in
    /// ordinary memory.
    #[test]
    fn a_region_still_being_faulted_in_hashes_right() {
        use argon2::{Algorithm, Argon2, Params, Version};
        let blocks = 3 * 2048 + 7; // over three huge pages, not a multiple
        let params = Params::new(blocks as u32, 1, 1, None).unwrap();
        let a = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut want = [0u8; 32];
        a.hash_password_into(b"pw", b"saltsalt", &mut want).unwrap();
        prefault(blocks, 2);
        for _ in 0..2 {
            let got = with_blocks(blocks, |mem| {
                let mut out = [0u8; 32];
                a.hash_password_into_with_memory(b"pw", b"saltsalt", &mut out, mem)
                    .unwrap();
                out
            });
            assert_eq!(got, want);
        }
    }
}
