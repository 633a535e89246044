//! Working memory for argon2: its 19 MiB come from one dedicated mapping,
//! backed by transparent huge pages and faulted in ahead of time.
//!
//! Why: every `login` and `reset confirm` is a short process whose cost is
//! dominated by one argon2id evaluation. From the allocator, 19 MiB of fresh
//! 4 KiB pages cost ~4,900 page faults per hash; one 2 MiB-aligned mapping
//! with `MADV_HUGEPAGE` costs about ten, and `MADV_POPULATE_WRITE` takes them
//! all at once, in the kernel, before the hash starts — on another core,
//! while the process is still opening its database ([`prefault`]).
//!
//! Invariants:
//! - This is the only unsafe memory code of the program, and it touches
//!   only these mappings: every other allocation is the system allocator's.
//! - A region is used by one hash at a time (taken from the pool, put back
//!   after); two hashes at once (`reset confirm`) get two regions.
//! - Argon2 writes every block before reading it, so a region reused by a
//!   later hash needs no clearing; regions are unmapped at exit.
//! - When a mapping cannot be made (or off Linux), the hash runs in
//!   ordinary heap memory: slower, never wrong.

use argon2::Block;
use std::sync::Mutex;

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
            let ptr = aligned as *mut Block;
            // SAFETY: [aligned, aligned + bytes) lies inside the mapping just
            // made; the advice only changes how its pages are backed.
            unsafe {
                libc::madvise(aligned as *mut libc::c_void, bytes, libc::MADV_HUGEPAGE);
                if libc::madvise(
                    aligned as *mut libc::c_void,
                    bytes,
                    libc::MADV_POPULATE_WRITE,
                ) != 0
                {
                    // Older kernels: touch one byte per page instead.
                    let p = aligned as *mut u8;
                    let mut off = 0;
                    while off < bytes {
                        p.add(off).write_volatile(0);
                        off += 4096;
                    }
                }
            }
            Some(Region {
                ptr,
                blocks,
                base,
                len,
            })
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

        pub fn blocks(&self) -> usize {
            self.0.len()
        }

        pub fn slice(&mut self) -> &mut [Block] {
            &mut self.0
        }
    }
}

use region::Region;

/// Regions not in use, ready for the next hash.
static POOL: Mutex<Vec<Region>> = Mutex::new(Vec::new());

/// Regions being prepared in the background by [`prefault`].
static PENDING: Mutex<Option<std::thread::JoinHandle<Vec<Region>>>> = Mutex::new(None);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn take(blocks: usize) -> Option<Region> {
    let pending = lock(&PENDING).take();
    if let Some(Ok(ready)) = pending.map(|h| h.join()) {
        lock(&POOL).extend(ready);
    }
    let mut pool = lock(&POOL);
    if let Some(i) = pool.iter().position(|r| r.blocks() == blocks) {
        return Some(pool.swap_remove(i));
    }
    drop(pool);
    Region::new(blocks)
}

/// Runs `f` with `blocks` blocks of argon2 working memory.
pub fn with_blocks<R>(blocks: usize, f: impl FnOnce(&mut [Block]) -> R) -> R {
    match take(blocks) {
        Some(mut r) => {
            let out = f(r.slice());
            lock(&POOL).push(r);
            out
        }
        None => f(&mut vec![Block::new(); blocks]),
    }
}

/// Starts preparing `count` regions on another thread (mapping them and
/// faulting their pages in), so the process's first hashes find their
/// memory ready. A process that cannot start a thread simply does without.
pub fn prefault(blocks: usize, count: usize) {
    if crate::ops::spawn_refused() {
        return;
    }
    let mut pending = lock(&PENDING);
    if pending.is_some() {
        return;
    }
    let job = move || (0..count).filter_map(|_| Region::new(blocks)).collect();
    if let Ok(h) = std::thread::Builder::new().spawn(job) {
        *pending = Some(h);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
