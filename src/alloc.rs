//! A global allocator that backs large allocations with transparent huge
//! pages.
//!
//! Why: every `login` and `reset confirm` is one short process whose cost
//! is dominated by argon2id's 19 MiB working memory. Fresh 4 KiB pages cost
//! ~4,900 page faults per hash, about 40% of the hash's time. Mapping the
//! block 2 MiB-aligned and asking for huge pages (`MADV_HUGEPAGE`) turns that
//! into ~10 faults. Measured on the development machine: 29 ms → 18 ms per
//! hash (see BENCHMARKS.md). The hash itself is unchanged.
//!
//! Invariants:
//! - Only allocations of at least [`THRESHOLD`] bytes with alignment up to
//!   2 MiB take this path; everything else goes to the system allocator, and
//!   `dealloc`/`realloc` route by the same rule, so a pointer is always freed
//!   by the allocator that made it.
//! - Large blocks come straight from `mmap` (zero-filled by the kernel, so
//!   `alloc_zeroed` needs no memset) and go back with `munmap`.
//! - If `mmap` fails, the allocation fails (null), as `GlobalAlloc` requires;
//!   if `madvise` fails (no THP), the block still works with small pages.

use std::alloc::{GlobalAlloc, Layout, System};

/// Allocations this large are mapped directly.
pub const THRESHOLD: usize = 4 << 20;
const HUGE: usize = 2 << 20;
const PAGE: usize = 4096;

pub struct HugePages;

fn is_big(layout: &Layout) -> bool {
    layout.size() >= THRESHOLD && layout.align() <= HUGE
}

fn round_up(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

#[cfg(target_os = "linux")]
unsafe fn map(size: usize) -> *mut u8 {
    let used = round_up(size, PAGE);
    let len = used + HUGE;
    // SAFETY: an anonymous private mapping; no existing memory is touched.
    let raw = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if raw == libc::MAP_FAILED {
        return std::ptr::null_mut();
    }
    let start = raw as usize;
    let aligned = round_up(start, HUGE);
    let head = aligned - start;
    let tail = len - head - used;
    // SAFETY: both ranges lie inside the mapping just made and outside the
    // part handed out.
    unsafe {
        if head > 0 {
            libc::munmap(raw, head);
        }
        if tail > 0 {
            libc::munmap((aligned + used) as *mut libc::c_void, tail);
        }
        libc::madvise(aligned as *mut libc::c_void, used, libc::MADV_HUGEPAGE);
    }
    aligned as *mut u8
}

#[cfg(target_os = "linux")]
unsafe fn unmap(ptr: *mut u8, size: usize) {
    // SAFETY: `ptr` came from `map` with the same size.
    unsafe {
        libc::munmap(ptr.cast(), round_up(size, PAGE));
    }
}

#[cfg(target_os = "linux")]
unsafe impl GlobalAlloc for HugePages {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_big(&layout) {
            unsafe { map(layout.size()) }
        } else {
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_big(&layout) {
            // Fresh anonymous pages are zero.
            unsafe { map(layout.size()) }
        } else {
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_big(&layout) {
            unsafe { unmap(ptr, layout.size()) }
        } else {
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `layout` describes `ptr` and the new
        // layout is valid.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if !is_big(&layout) && !is_big(&new_layout) {
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

#[cfg(not(target_os = "linux"))]
unsafe impl GlobalAlloc for HugePages {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn big_blocks_are_aligned_zeroed_and_usable() {
        let a = HugePages;
        for size in [THRESHOLD, 19 << 20, (19 << 20) + 123] {
            let layout = Layout::from_size_align(size, 64).unwrap();
            unsafe {
                let p = a.alloc_zeroed(layout);
                assert!(!p.is_null());
                assert_eq!(p as usize % HUGE, 0);
                let s = std::slice::from_raw_parts_mut(p, size);
                assert!(s.iter().all(|b| *b == 0));
                s.fill(0xAB);
                // Grow and shrink across the threshold keep the contents.
                let q = a.realloc(p, layout, size * 2);
                assert!(!q.is_null());
                assert_eq!(*q.add(size - 1), 0xAB);
                let big = Layout::from_size_align(size * 2, 64).unwrap();
                let r = a.realloc(q, big, 100);
                assert_eq!(*r.add(99), 0xAB);
                a.dealloc(r, Layout::from_size_align(100, 64).unwrap());
            }
        }
    }

    #[test]
    fn small_blocks_use_the_system_allocator() {
        let a = HugePages;
        let layout = Layout::from_size_align(1000, 8).unwrap();
        unsafe {
            let p = a.alloc(layout);
            assert!(!p.is_null());
            let q = a.realloc(p, layout, 5000);
            a.dealloc(q, Layout::from_size_align(5000, 8).unwrap());
        }
    }

    #[test]
    fn argon2_through_the_allocator_gives_the_reference_hash() {
        // The unit tests run with this allocator (lib.rs); the hash of a
        // fixed password and salt must be argon2id's known value.
        use argon2::password_hash::PasswordHasher;
        let a = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::new(19456, 2, 1, Some(32)).unwrap(),
        );
        let h = a
            .hash_password_with_salt(b"password", b"somesaltsomesalt")
            .unwrap();
        let reference = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::new(19456, 2, 1, Some(32)).unwrap(),
        );
        let mut out = [0u8; 32];
        let mut blocks = vec![argon2::Block::default(); 19456];
        reference
            .hash_password_into_with_memory(b"password", b"somesaltsomesalt", &mut out, &mut blocks)
            .unwrap();
        assert_eq!(h.hash.unwrap().as_bytes(), &out);
    }
}
