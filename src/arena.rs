//! The launcher's allocator: a bump arena with size-class free lists, in front of the system
//! allocator.
//!
//! A start allocates a few thousand small, short-lived blocks (clap's command tree, the manifest,
//! the host probe, the plan's strings, the journal). musl's allocator hands memory back to the
//! kernel eagerly, so a start paid ~50 mmap/munmap pairs and their page faults (bench/RESULTS.md,
//! perf: `munmap` 0.17 ms and malloc/free 0.1 ms of a ~3 ms start). The arena is one static
//! region: allocating is an atomic add; freeing the newest block or growing it in place (a
//! `String` or `Vec` being built) is a compare-and-swap; other small blocks (≤ 4 KiB, in
//! power-of-two classes) go on a free list of their class for the next allocation of that class.
//! When the region is full, blocks come from the system allocator, so a long-lived launcher (a
//! pty relay for days) never runs out; only the pages of the region actually used are resident.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Size classes 16, 32, …, 4096 bytes.
const CLASSES: usize = 9;
const MIN_CLASS: usize = 16;
/// Blocks of a class are aligned to 16 bytes, so a layout asking for more never uses them.
const CLASS_ALIGN: usize = 16;

/// A bump arena of `N` bytes with size-class free lists, backed by the system allocator when full.
pub struct Arena<const N: usize> {
    space: Space<N>,
    /// Offset of the first never-used byte of `space`.
    top: AtomicUsize,
    /// Guards `free`.
    lock: AtomicBool,
    /// Per class, 1 + the offset of the first free block (0: none); a free block holds the next
    /// entry in its first word.
    free: UnsafeCell<[usize; CLASSES]>,
}

#[repr(C, align(4096))]
struct Space<const N: usize>(UnsafeCell<[u8; N]>);

// SAFETY: the bytes are only reached through pointers handed out by `alloc` (or, for free
// blocks, under `lock`); `top` (an atomic) makes every handed-out range disjoint from every other
// live one, and `free` is only touched while `lock` is held.
unsafe impl<const N: usize> Sync for Arena<N> {}

/// The class of a layout small enough for one.
fn class(layout: Layout) -> Option<usize> {
    (layout.size() <= MIN_CLASS << (CLASSES - 1) && layout.align() <= CLASS_ALIGN).then(|| {
        let size = layout.size().max(MIN_CLASS).next_power_of_two();
        (size.trailing_zeros() - MIN_CLASS.trailing_zeros()) as usize
    })
}

/// Bytes a block of this layout takes in the arena (its class size, or exactly its size).
fn block_size(layout: Layout) -> usize {
    class(layout).map_or(layout.size(), |c| MIN_CLASS << c)
}

impl<const N: usize> Arena<N> {
    /// An empty arena (usable in a `static`).
    pub const fn new() -> Self {
        Arena {
            space: Space(UnsafeCell::new([0; N])),
            top: AtomicUsize::new(0),
            lock: AtomicBool::new(false),
            free: UnsafeCell::new([0; CLASSES]),
        }
    }

    /// The start of the region (pointers into it are derived from this one: strict provenance).
    fn base(&self) -> *mut u8 {
        self.space.0.get().cast()
    }

    /// The offset of `p` in the arena, if it points into it.
    fn offset(&self, p: *mut u8) -> Option<usize> {
        p.addr().checked_sub(self.base().addr()).filter(|&o| o < N)
    }

    /// Bytes of the arena ever handed out and not given back by rolling `top` back.
    pub fn used(&self) -> usize {
        self.top.load(Ordering::Acquire)
    }

    /// Move `top` from `from` to `to` if nothing else moved it.
    fn swap_top(&self, from: usize, to: usize) -> bool {
        self.top
            .compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Run `f` on the free lists, under the lock.
    fn with_free<R>(&self, f: impl FnOnce(&mut [usize; CLASSES]) -> R) -> R {
        while self
            .lock
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::hint::spin_loop();
        }
        // SAFETY: the lock is held, so this is the only reference to the lists.
        let r = f(unsafe { &mut *self.free.get() });
        self.lock.store(false, Ordering::Release);
        r
    }

    /// A block of class `c` from its free list.
    fn pop(&self, c: usize) -> Option<*mut u8> {
        let base = self.base();
        self.with_free(|free| {
            let head = free[c].checked_sub(1)?;
            let p = base.wrapping_add(head).cast::<usize>();
            // SAFETY: a free block of this arena, at least 16 bytes, 16-aligned, owned by the
            // list (the lock is held); its first word is the next entry.
            free[c] = unsafe { p.read() };
            Some(p.cast::<u8>())
        })
    }

    /// Put the block at `off` on the free list of class `c`.
    fn push(&self, c: usize, off: usize) {
        let p = self.base().wrapping_add(off).cast::<usize>();
        self.with_free(|free| {
            // SAFETY: the caller gave the block up; it is at least 16 bytes and 16-aligned.
            unsafe { p.write(free[c]) };
            free[c] = off + 1;
        });
    }

    /// Reserve `size` bytes aligned to `align` at the top of the arena.
    fn bump(&self, size: usize, align: usize) -> Option<*mut u8> {
        let base = self.base();
        let mut top = self.top.load(Ordering::Acquire);
        loop {
            // Align the absolute address: `base` is page-aligned, but be exact anyway.
            let start = (base.addr() + top).next_multiple_of(align) - base.addr();
            let end = start.checked_add(size).filter(|&e| e <= N)?;
            match self
                .top
                .compare_exchange_weak(top, end, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Some(base.wrapping_add(start)),
                Err(now) => top = now,
            }
        }
    }
}

impl<const N: usize> Default for Arena<N> {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: every block handed out is at least `layout.size()` bytes aligned to `layout.align()`,
// inside the arena or from `System`. Arena blocks are reserved with compare-and-swap on `top` or
// taken from a free list under the lock, so no two live blocks overlap; a block is given back
// either by rolling `top` back (only when it is the newest: its end is `top`) or onto the list
// of the class its layout maps to, and a block of class `c` always spans `16 << c` bytes. Blocks
// from `System` go back to `System`.
unsafe impl<const N: usize> GlobalAlloc for Arena<N> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let c = class(layout);
        if let Some(p) = c.and_then(|c| self.pop(c)) {
            return p;
        }
        let align = if c.is_some() {
            CLASS_ALIGN
        } else {
            layout.align()
        };
        match self.bump(block_size(layout), align) {
            Some(p) => p,
            // SAFETY: the caller's layout, passed on unchanged.
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        let Some(off) = self.offset(p) else {
            // SAFETY: not ours, so `System` allocated it with this layout.
            return unsafe { System.dealloc(p, layout) };
        };
        let size = block_size(layout);
        if self.swap_top(off + size, off) {
            return;
        }
        if let Some(c) = class(layout) {
            self.push(c, off);
        }
        // A larger block that is not the newest stays used.
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Some(off) = self.offset(p) else {
            // SAFETY: not ours, so `System` allocated it with this layout.
            return unsafe { System.realloc(p, layout, new_size) };
        };
        // SAFETY: realloc's contract: `new_size` rounded to the alignment is a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let (old, new) = (block_size(layout), block_size(new_layout));
        // The newest block grows or shrinks in place.
        if off + new <= N && self.swap_top(off + old, off + new) {
            return p;
        }
        // Any block keeps its place when it still fits (freed later as the smaller class).
        if new <= old {
            return p;
        }
        // SAFETY: `new_layout` is valid and non-zero (it is larger than the old block).
        let q = unsafe { self.alloc(new_layout) };
        if !q.is_null() {
            // SAFETY: both blocks are live, disjoint and at least `layout.size()` bytes long.
            unsafe {
                std::ptr::copy_nonoverlapping(p, q, layout.size());
                self.dealloc(p, layout);
            }
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn newest_block_is_reused_and_grows_in_place() {
        let a: Box<Arena<4096>> = Box::default();
        unsafe {
            let p = a.alloc(layout(100, 8));
            assert_eq!(a.used(), 128, "a class-128 block");
            let q = a.realloc(p, layout(100, 8), 300);
            assert_eq!(p, q, "the newest block grows in place");
            assert_eq!(a.used(), 512);
            let big = a.realloc(q, layout(300, 8), 3000);
            assert_eq!(big, q);
            assert_eq!(a.used(), 4096);
            a.dealloc(big, layout(3000, 8));
            assert_eq!(a.used(), 0, "the newest block gives its space back");
            let o = a.alloc(layout(8, 8));
            let r = a.alloc(layout(10, 64));
            assert_eq!(
                r as usize % 64,
                0,
                "over-aligned: exact size, its own alignment"
            );
            assert_eq!(a.used(), 74);
            a.dealloc(r, layout(10, 64));
            assert_eq!(a.used(), 64, "alignment padding stays, the block is back");
            a.dealloc(o, layout(8, 8));
        }
    }

    #[test]
    fn small_blocks_are_reused_by_class() {
        let a: Box<Arena<4096>> = Box::default();
        unsafe {
            let p = a.alloc(layout(24, 8)); // class 32
            let q = a.alloc(layout(100, 8)); // class 128
            assert_eq!(a.used(), 160);
            a.dealloc(p, layout(24, 8));
            assert_eq!(a.used(), 160, "not the newest: on the free list");
            let r = a.alloc(layout(17, 1));
            assert_eq!(r, p, "the same class reuses it");
            let s = a.alloc(layout(40, 8));
            assert_ne!(s, p, "another class does not");
            // A block grown past its class moves (unless it is the newest), and its old place
            // is reused.
            let q2 = a.realloc(q, layout(100, 8), 1000);
            assert_ne!(q2, q);
            assert_eq!(a.alloc(layout(128, 16)), q);
            // Over-aligned layouts never use class blocks.
            let o = a.alloc(layout(32, 64));
            assert_eq!(o as usize % 64, 0);
            a.dealloc(r, layout(17, 1));
            assert_ne!(a.alloc(layout(32, 64)), r);
            let _ = o;
        }
    }

    #[test]
    fn a_full_arena_falls_back_to_the_system_allocator() {
        let a: Box<Arena<1024>> = Box::default();
        unsafe {
            let p = a.alloc(layout(1000, 8));
            assert!(a.offset(p).is_some());
            let q = a.alloc(layout(100, 8));
            assert!(a.offset(q).is_none(), "from System");
            q.write_bytes(7, 100);
            let q2 = a.realloc(q, layout(100, 8), 5000);
            assert_eq!(*q2.add(99), 7);
            a.dealloc(q2, layout(5000, 8));
            // Moving out of the arena keeps the contents.
            p.write_bytes(9, 1000);
            let a2 = a.alloc(layout(8, 8));
            let p2 = a.realloc(p, layout(1000, 8), 2000);
            assert!(a.offset(p2).is_none());
            assert!((0..1000).all(|i| *p2.add(i) == 9));
            a.dealloc(p2, layout(2000, 8));
            a.dealloc(a2, layout(8, 8));
        }
    }

    /// Threads allocating, growing and freeing at once never get overlapping blocks: each writes
    /// its own pattern and checks it is intact before freeing.
    #[test]
    fn concurrent_blocks_never_overlap() {
        let arena: Box<Arena<65536>> = Box::default();
        let a = &*arena;
        std::thread::scope(|scope| {
            for t in 0..4u8 {
                scope.spawn(move || unsafe {
                    // Fewer rounds under Miri, which interprets every step.
                    for i in 0..if cfg!(miri) { 200 } else { 2000 } {
                        let n = 1 + (i * 7 + t as usize) % 200;
                        let p = a.alloc(layout(n, 8));
                        p.write_bytes(t, n);
                        let m = n + i % 50;
                        let q = a.realloc(p, layout(n, 8), m);
                        q.add(n).write_bytes(t, m - n);
                        std::thread::yield_now();
                        assert!((0..m).all(|k| *q.add(k) == t), "block overwritten");
                        a.dealloc(q, layout(m, 8));
                    }
                });
            }
        });
    }
}
