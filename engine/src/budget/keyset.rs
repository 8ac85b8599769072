//! The sub-ledger's idempotency key set: two generations of at most `half` keys each in one flat
//! open-addressing table of cache lines, so a charge's lookup touches one 64-byte line (and can be
//! prefetched long before the charge: [`KeySet::prefetch`]).
//!
//! Layout: `buckets` is an array of 64-byte-aligned buckets (on huge pages, see `Table`): 7 `u64`
//! key slots and 8 tag bytes.
//! Tag byte `j < 7` is the generation (the low 8 bits of the epoch counter) that wrote slot `j`;
//! tag byte 7 is the latest generation in which an insert found this bucket full and went on to
//! the next one (linear probing). A slot is live while its tag is the current epoch or the one
//! before; both generations share the 7 slots of a line, and a slot whose tag is older is free
//! to reuse at once.
//!
//! Rotation (every `half` inserts) only increments the epoch: the older generation is forgotten
//! because its tags stop being live, with no pass over the table. Tags are 8 bits, so a tag left
//! untouched for 254 epochs would read as live again: each rotation also normalises the next
//! `ceil(buckets / 64)` buckets (a sweeping cursor), rewriting every dead tag to `epoch - 2`, so
//! every bucket is visited at least once every 64 epochs and no dead tag lives long enough to
//! come back.
//!
//! Probing: a key lives in its home bucket or, if that was full when it was inserted, further
//! along; every bucket it passed got the overflow tag of that epoch. A lookup goes on to the next
//! bucket only while the overflow tag is live (a key of a live generation may have passed), so
//! it usually reads the home line only. Overflow tags are only ever raised to the current epoch,
//! so a live key's path stays marked as long as the key is live. Marked buckets were full: at
//! most `3 * half / 7` of them carry a live overflow tag (keys of the last three generations), so
//! a probe always ends.
//!
//! A fresh table holds key 0 with tag 0 in every slot, dead at the first epoch (2); the key 0
//! itself is stored like any other key.
//!
//! Fast path ([`KeySet::lookup`], and [`KeySet::vacancy`] for the charge): the seven keys
//! compared with the key (no hit), the tags' liveness as an 8-bit mask (SSE2 byte compares on
//! x86_64), and one compare of that mask: a free slot and no live overflow mark. Anything else (a
//! hit, live or dead; a full bucket; a live overflow mark) takes the general probe. A charge asks
//! [`KeySet::vacancy`], which also requires room in the current generation and hands back the
//! bucket itself: the insert ([`Vacancy::fill`]) is two stores and a count, with no index to
//! check again; when it answers `None` the charge takes the general lookup and insert.
//!
//! Home bucket: the high bits of `key * mult` scaled to the bucket count (`(key * mult) * n >>
//! 64`, a multiply instead of a division) with `mult` an odd multiplier drawn once per process, so
//! keys chosen to collide (impression keys are a fixed-seed hash of request and imp ids) cannot
//! pile into one bucket run. Placement never changes an answer, only where a key is stored, so
//! the state machine stays deterministic.
//!
//! Sizing: `ceil(3 * half / 4)` buckets (7 slots each) for at most `2 * half` live keys, at most
//! 38 % full. Guarantee (as before): a key is remembered until two rotations later, i.e. at least
//! `half` further inserts; the set holds at most `2 * half` keys.

use std::alloc::Layout;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::OnceLock;

/// Key slots per bucket.
const SLOTS: usize = 7;
/// Index of the overflow tag among the tag bytes.
const OVERFLOW: usize = 7;
/// Slot bits of a liveness mask ([`Bucket::live`]): bit `j` for slot `j`.
const SLOT_BITS: u32 = 0x7f;
/// The overflow tag's bit of a liveness mask.
const OVERFLOW_BIT: u32 = 0x80;
/// 1 in every byte (times a byte: that byte broadcast).
const ONES: u64 = 0x0101_0101_0101_0101;
/// Each rotation normalises `ceil(buckets / SWEEP_EPOCHS)` buckets: every bucket at least once in
/// this many epochs (must stay well below the 254 epochs after which an 8-bit tag reads live).
const SWEEP_EPOCHS: usize = 64;

/// One cache line: 7 key slots, their generation tags and the overflow tag.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(64))]
struct Bucket {
    keys: [u64; SLOTS],
    /// Bytes 0..7: epoch (low 8 bits) that wrote each slot; byte 7: the latest epoch in which an
    /// insert passed this bucket full.
    tags: [u8; 8],
}

/// Bit 7 of each byte of `x` that is zero (exact: no carry between bytes).
#[inline(always)]
fn zero_bytes(x: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    !(((x & LOW7) + LOW7) | x | LOW7)
}

/// Bit 7 of each byte of `tags` equal to the same byte of `cur` or `prev` (each a tag
/// broadcast to 8 bytes).
#[inline(always)]
fn live_bytes(tags: u64, cur: u64, prev: u64) -> u64 {
    zero_bytes(tags ^ cur) | zero_bytes(tags ^ prev)
}

/// Bit `j` set for each tag byte `j` equal to its byte in `cur` or `prev`: SSE2 byte compares
/// (the x86_64 baseline: no target feature needed).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn live_mask(tags: u64, cur: u64, prev: u64) -> u32 {
    use core::arch::x86_64::{_mm_cmpeq_epi8, _mm_cvtsi64_si128, _mm_movemask_epi8, _mm_or_si128};
    // SAFETY: register-only SSE2 intrinsics (no memory access), and this build enables SSE2
    // (the cfg above; every x86_64 CPU has it).
    let eq = unsafe {
        let t = _mm_cvtsi64_si128(tags as i64);
        _mm_or_si128(
            _mm_cmpeq_epi8(t, _mm_cvtsi64_si128(cur as i64)),
            _mm_cmpeq_epi8(t, _mm_cvtsi64_si128(prev as i64)),
        )
    };
    // Bytes 8..16 are zero on all sides (equal): only the low 8 bits count.
    // SAFETY: as above.
    (unsafe { _mm_movemask_epi8(eq) }) as u32 & 0xff
}

/// [`live_mask`] elsewhere.
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline(always)]
fn live_mask(tags: u64, cur: u64, prev: u64) -> u32 {
    live_mask_swar(tags, cur, prev)
}

/// [`live_mask`] without SIMD: the SWAR bytes gathered into 8 bits by one multiply.
#[cfg_attr(
    all(target_arch = "x86_64", target_feature = "sse2", not(test)),
    allow(dead_code)
)]
#[inline(always)]
fn live_mask_swar(tags: u64, cur: u64, prev: u64) -> u32 {
    (((live_bytes(tags, cur, prev) >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56) & 0xff) as u32
}

impl Bucket {
    /// Bit `j` for each live slot `j`, [`OVERFLOW_BIT`] if the overflow mark is live.
    #[inline(always)]
    fn live(&self, cur: u64, prev: u64) -> u32 {
        live_mask(u64::from_le_bytes(self.tags), cur, prev)
    }

    /// The free slot `key` goes to when this bucket, its home, settles it alone: the key not
    /// there (live or dead), a free slot (some bit of 0x7f clear) and the overflow mark (0x80)
    /// dead. `None`: the general probe decides.
    #[inline(always)]
    fn home_slot_for_absent(&self, key: u64, cur: u64, prev: u64) -> Option<usize> {
        if self.keys.contains(&key) {
            return None;
        }
        let live = self.live(cur, prev);
        (live < SLOT_BITS).then(|| first_free_slot(live))
    }

    /// Slots holding `key`, live or not (bit `j` for slot `j`).
    #[inline(always)]
    fn matches(&self, key: u64) -> u32 {
        let mut m = 0;
        for (j, &k) in self.keys.iter().enumerate() {
            m |= u32::from(k == key) << j;
        }
        m
    }
}

/// The first set slot bit of `bits` (a slot mask as from [`Bucket::live`]) as a slot index.
#[inline(always)]
fn first_slot(bits: u32) -> usize {
    bits.trailing_zeros() as usize
}

/// The first free slot of a home bucket whose liveness mask `live` is below [`SLOT_BITS`] (so
/// some slot bit is clear): bit 6 is forced in, which changes nothing (if slots 0..6 are all
/// live but one, the lowest clear bit is at most 6 anyway) and lets the compiler see that the
/// index is below [`SLOTS`] (no bounds check on the insert).
#[inline(always)]
fn first_free_slot(live: u32) -> usize {
    (!live | 1 << (SLOTS - 1)).trailing_zeros() as usize
}

/// A free slot in a key's home bucket, as [`KeySet::vacancy`] found it: [`Vacancy::fill`] is the
/// insert (the slot, the bucket and the generation's count are already borrowed: no index to
/// check again).
pub struct Vacancy<'a> {
    bucket: &'a mut Bucket,
    /// Below [`SLOTS`].
    slot: usize,
    /// The current generation's tag.
    tag: u8,
    /// Keys the current generation still takes (not 0: no rotation due).
    cur_room: &'a mut usize,
}

impl Vacancy<'_> {
    /// Remembers `key` (the key [`KeySet::vacancy`] was asked about) in this slot.
    #[inline(always)]
    pub fn fill(self, key: u64) {
        *self.cur_room -= 1;
        self.bucket.keys[self.slot] = key;
        self.bucket.tags[self.slot] = self.tag;
    }
}

/// Where [`KeySet::lookup`] found room for the key in the current generation: `bucket * 8 +
/// slot`, with [`PROBED`] set when that is past the key's home bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot(usize);

/// The slot is past the home bucket: the insert marks the buckets it passed.
const PROBED: usize = 1 << (usize::BITS - 1);

/// The per-process multiplier of the home-bucket hash (odd, from the OS-seeded `RandomState`).
fn process_multiplier() -> u64 {
    static MULT: OnceLock<u64> = OnceLock::new();
    *MULT.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x9e37_79b9_7f4a_7c15);
        h.finish() | 1
    })
}

/// Transparent huge page size on x86_64 Linux.
const HUGE_PAGE: usize = 2 << 20;

/// The bucket table: `len` empty buckets in one allocation, on transparent huge pages where the
/// kernel has them. A charge reads one line at a random place of a table of megabytes (6 MB for
/// the default 262144 keys), so with 4 KiB pages nearly every charge also misses the TLB; with
/// 2 MiB pages the whole table fits the TLB. A table of a huge page or more is therefore aligned
/// to one and rounded up to whole ones: only whole, aligned 2 MiB pages can be huge, and with a
/// plain allocation, where the table started within a huge page (ASLR: a different place every
/// run) decided how much of it stayed on small pages. Aligned, the default table is all huge
/// pages (the bench process shows `AnonHugePages: 6144 kB`). Advice only: where the kernel has
/// no huge pages (THP `never`, none free) the table is the same, on small pages.
struct Table {
    buckets: NonNull<Bucket>,
    len: usize,
}

// SAFETY: `Table` owns its allocation exactly like a `Box<[Bucket]>` (plain data, no sharing).
unsafe impl Send for Table {}
// SAFETY: as above; `&Table` only gives `&[Bucket]`.
unsafe impl Sync for Table {}

impl Table {
    fn new(len: usize) -> Table {
        let layout = Self::layout(len);
        // SAFETY: `layout` has a non-zero size (`len >= 1` buckets of 64 bytes).
        let raw = unsafe { std::alloc::alloc(layout) }.cast::<Bucket>();
        let Some(buckets) = NonNull::new(raw) else {
            std::alloc::handle_alloc_error(layout)
        };
        if layout.align() == HUGE_PAGE {
            advise_huge_pages(raw.cast(), layout.size());
        }
        for i in 0..len {
            // SAFETY: `i < len`: inside the allocation; the first write (and touch) of the slot.
            unsafe { raw.add(i).write(Bucket::default()) };
        }
        Table { buckets, len }
    }

    /// One huge page or more: aligned to huge pages and rounded up to whole ones; else a plain
    /// cache-line-aligned array.
    fn layout(len: usize) -> Layout {
        let bytes = len.max(1) * std::mem::size_of::<Bucket>();
        if bytes >= HUGE_PAGE {
            Layout::from_size_align(bytes.next_multiple_of(HUGE_PAGE), HUGE_PAGE)
        } else {
            Layout::array::<Bucket>(len.max(1))
        }
        .expect("a key set's table fits the address space")
    }
}

impl Deref for Table {
    type Target = [Bucket];
    fn deref(&self) -> &[Bucket] {
        // SAFETY: `len` buckets written in `new`, owned by `self`.
        unsafe { std::slice::from_raw_parts(self.buckets.as_ptr(), self.len) }
    }
}

impl DerefMut for Table {
    fn deref_mut(&mut self) -> &mut [Bucket] {
        // SAFETY: as in `deref`, and `&mut self` is the only access.
        unsafe { std::slice::from_raw_parts_mut(self.buckets.as_ptr(), self.len) }
    }
}

impl Drop for Table {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this same layout (`Bucket` needs no drop).
        unsafe { std::alloc::dealloc(self.buckets.as_ptr().cast(), Self::layout(self.len)) }
    }
}

impl Clone for Table {
    fn clone(&self) -> Table {
        let mut copy = Table::new(self.len);
        copy.copy_from_slice(self);
        copy
    }
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Table({} buckets)", self.len)
    }
}

/// `madvise(MADV_HUGEPAGE)` on `[start, start + len)`, whole aligned huge pages not touched yet
/// (their first touch then faults huge pages in; THP `madvise` mode serves exactly such regions).
#[cfg(target_os = "linux")]
fn advise_huge_pages(start: *mut libc::c_void, len: usize) {
    // SAFETY: advice on memory `Table::new` just allocated and nothing references yet;
    // MADV_HUGEPAGE changes no contents. A failure (old kernel, THP compiled out) leaves small
    // pages: nothing to handle.
    unsafe { libc::madvise(start, len, libc::MADV_HUGEPAGE) };
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_start: *mut libc::c_void, _len: usize) {}

#[derive(Debug, Clone)]
pub struct KeySet {
    buckets: Table,
    /// `buckets.len()`.
    n: usize,
    mult: u64,
    /// Generation counter; starts at 2, so the zero tags of a fresh table are dead.
    epoch: u64,
    /// The low byte of `epoch` in every byte.
    cur_tags: u64,
    /// The low byte of `epoch - 1` in every byte.
    prev_tags: u64,
    /// Keys the current generation still takes before the next insert rotates (`half` after a
    /// rotation, counted down: one compare with 0 per charge).
    cur_room: usize,
    half: usize,
    /// Next bucket the rotation's sweep normalises.
    sweep: usize,
}

impl Default for KeySet {
    fn default() -> Self {
        KeySet::new(2)
    }
}

impl KeySet {
    /// A set remembering at least `max / 2` recent keys (two generations of `max / 2`).
    pub fn new(max: usize) -> KeySet {
        KeySet::with_multiplier(max, process_multiplier())
    }

    /// [`KeySet::new`] with a chosen multiplier (tests: a deliberately bad one).
    pub fn with_multiplier(max: usize, mult: u64) -> KeySet {
        let half = (max / 2).max(1);
        // `7 * n >= 5.25 * half` slots for at most `2 * half` live keys: a probe rarely leaves
        // its home line.
        let buckets = (3 * half).div_ceil(4).max(2);
        let mut s = KeySet {
            buckets: Table::new(buckets),
            n: buckets,
            mult: mult | 1,
            epoch: 2,
            cur_tags: 0,
            prev_tags: 0,
            cur_room: half,
            half,
            sweep: 0,
        };
        s.set_tags();
        s
    }

    fn set_tags(&mut self) {
        let e = self.epoch as u8;
        self.cur_tags = ONES * u64::from(e);
        self.prev_tags = ONES * u64::from(e.wrapping_sub(1));
    }

    #[inline(always)]
    fn home(&self, key: u64) -> usize {
        ((u128::from(key.wrapping_mul(self.mult)) * self.n as u128) >> 64) as usize
    }

    #[inline(always)]
    fn next(&self, i: usize) -> usize {
        if i + 1 == self.n { 0 } else { i + 1 }
    }

    /// Starts loading the line `key` will be looked up in (no effect on the answer). The
    /// address is computed, not indexed: `home < n` anyway, and a prefetch never faults, so
    /// there is no bounds check to pay.
    #[inline(always)]
    pub fn prefetch(&self, key: u64) {
        prefetch_ptr(self.buckets.as_ptr().wrapping_add(self.home(key)));
    }

    /// Whether `key` is remembered (either generation).
    pub fn contains(&self, key: u64) -> bool {
        self.lookup(key).is_err()
    }

    /// `Err(())` if `key` is remembered; else where it goes in the current generation (valid
    /// until the set changes; pass it to [`KeySet::insert_at`]). The usual case reads the home
    /// line only: the key not there (live or dead), a free slot, and no live overflow mark.
    #[inline(always)]
    #[allow(clippy::result_unit_err)]
    pub fn lookup(&self, key: u64) -> Result<Slot, ()> {
        let i = self.home(key);
        let (cur, prev) = (self.cur_tags, self.prev_tags);
        match self
            .buckets
            .get(i)
            .and_then(|b| b.home_slot_for_absent(key, cur, prev))
        {
            Some(slot) => Ok(Slot(i * 8 + slot)),
            None => self.lookup_slow(key),
        }
    }

    /// The usual lookup-then-insert, in one step: `Some` where `key` goes when its home line
    /// settles it (the key not there, live or dead; a free slot; no live overflow mark) and the
    /// current generation has room (no rotation due). `None` says nothing about the key: ask
    /// [`KeySet::lookup`] and [`KeySet::insert_at`]. Changes nothing until [`Vacancy::fill`].
    #[inline(always)]
    pub fn vacancy(&mut self, key: u64) -> Option<Vacancy<'_>> {
        if self.cur_room == 0 {
            return None;
        }
        let (i, tag) = (self.home(key), self.epoch as u8);
        let (cur, prev) = (self.cur_tags, self.prev_tags);
        let bucket = self.buckets.get_mut(i)?;
        let slot = bucket.home_slot_for_absent(key, cur, prev)?;
        Some(Vacancy {
            bucket,
            slot,
            tag,
            cur_room: &mut self.cur_room,
        })
    }

    /// [`KeySet::lookup`] in general: a copy of the key in the home bucket, a full home bucket,
    /// a live overflow mark.
    #[cold]
    #[inline(never)]
    fn lookup_slow(&self, key: u64) -> Result<Slot, ()> {
        match self.probe(key, false) {
            Some(_) => Err(()),
            None => Ok(self.room(key)),
        }
    }

    /// Probes `key`'s path: `Some(())` if a live slot (of the current generation only, with
    /// `current_only`) holds it. Ends at the first bucket without a live overflow mark (no live
    /// key passed it).
    fn probe(&self, key: u64, current_only: bool) -> Option<()> {
        let mut i = self.home(key);
        loop {
            let b = &self.buckets[i];
            let live = b.live(self.cur_tags, self.prev_tags);
            let mut holds = b.matches(key) & live;
            if current_only {
                holds &= b.live(self.cur_tags, self.cur_tags);
            }
            if holds != 0 {
                return Some(());
            }
            if live & OVERFLOW_BIT == 0 {
                return None;
            }
            i = self.next(i);
        }
    }

    /// The first free slot on `key`'s path (there is one: at most `2 * half` of `7 * n` slots are
    /// live).
    fn room(&self, key: u64) -> Slot {
        let home = self.home(key);
        let mut i = home;
        loop {
            let free = !self.buckets[i].live(self.cur_tags, self.prev_tags) & SLOT_BITS;
            if free != 0 {
                let at = i * 8 + first_slot(free);
                return Slot(if i == home { at } else { at | PROBED });
            }
            i = self.next(i);
        }
    }

    /// Remembers `key`, which [`KeySet::lookup`] just answered `Ok(slot)` for (nothing changed
    /// the set in between).
    #[inline(always)]
    pub fn insert_at(&mut self, key: u64, slot: Slot) {
        if self.cur_room == 0 {
            self.rotate_and_insert(key);
            return;
        }
        self.cur_room -= 1;
        if slot.0 & PROBED != 0 {
            self.put_probed(key, slot);
            return;
        }
        let e = self.epoch as u8;
        let b = &mut self.buckets[slot.0 / 8];
        let j = slot.0 % 8;
        debug_assert!(
            b.live(self.cur_tags, self.prev_tags) & (1 << j) == 0,
            "insert_at a live slot"
        );
        b.keys[j] = key;
        b.tags[j] = e;
    }

    /// [`KeySet::insert_at`] when the current generation is full.
    #[cold]
    #[inline(never)]
    fn rotate_and_insert(&mut self, key: u64) {
        self.rotate();
        self.insert(key);
    }

    /// Stores `key` at a slot past its home bucket, marking every bucket passed with this
    /// epoch's overflow tag.
    #[cold]
    #[inline(never)]
    fn put_probed(&mut self, key: u64, slot: Slot) {
        let at = slot.0 & !PROBED;
        let e = self.epoch as u8;
        let mut i = self.home(key);
        while i != at / 8 {
            self.buckets[i].tags[OVERFLOW] = e;
            i = self.next(i);
        }
        let b = &mut self.buckets[at / 8];
        b.keys[at % 8] = key;
        b.tags[at % 8] = e;
    }

    /// Remembers `key` in the current generation (a no-op if it is there already; rotates
    /// first when the generation is full).
    pub fn insert(&mut self, key: u64) {
        if self.cur_room == 0 {
            self.rotate();
        }
        // Only a copy in the current generation counts: one held by the older generation alone
        // is added again (it then lives as long as the current generation).
        if self.probe(key, true).is_some() {
            return;
        }
        let slot = self.room(key);
        self.cur_room -= 1;
        self.put_probed(key, Slot(slot.0 | PROBED));
    }

    /// The current generation becomes the older one; the older one is forgotten (its tags stop
    /// being live). Also normalises the next `ceil(n / SWEEP_EPOCHS)` buckets' dead tags.
    fn rotate(&mut self) {
        self.epoch += 1;
        self.cur_room = self.half;
        self.set_tags();
        let dead = ONES * u64::from((self.epoch as u8).wrapping_sub(2));
        for _ in 0..self.n.div_ceil(SWEEP_EPOCHS) {
            let b = &mut self.buckets[self.sweep];
            let t = u64::from_le_bytes(b.tags);
            let keep = (live_bytes(t, self.cur_tags, self.prev_tags) >> 7) * 0xff;
            b.tags = ((t & keep) | (dead & !keep)).to_le_bytes();
            self.sweep = self.next(self.sweep);
        }
    }

    /// Keys of the generation whose tag is the low byte of `e`.
    fn generation(&self, e: u64) -> impl Iterator<Item = u64> + '_ {
        let tag = e as u8;
        self.buckets.iter().flat_map(move |b| {
            b.keys
                .iter()
                .zip(&b.tags)
                .filter(move |&(_, &t)| t == tag)
                .map(|(&k, _)| k)
        })
    }

    /// Whether `key` is in the older generation and not the current one (checks, simulation;
    /// a scan, not for the hot path).
    pub fn in_older_generation_only(&self, key: u64) -> bool {
        self.generation(self.epoch - 1).any(|k| k == key)
            && !self.generation(self.epoch).any(|k| k == key)
    }

    /// Every remembered key, the older generation first (re-inserting in this order rebuilds
    /// the same generations).
    pub fn iter_oldest_first(&self) -> impl Iterator<Item = u64> + '_ {
        self.generation(self.epoch - 1)
            .chain(self.generation(self.epoch))
    }

    /// Keys remembered (both generations).
    pub fn len(&self) -> usize {
        self.iter_oldest_first().count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Asks the CPU to start loading the cache line at `p` (a hint: no effect on results, and no
/// memory access: any address will do; a no-op off x86_64).
#[inline(always)]
fn prefetch_ptr<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint that never faults and reads nothing the program sees,
    // whatever the address.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_large_table_starts_on_a_huge_page_boundary_and_clones_equal() {
        let len = HUGE_PAGE / std::mem::size_of::<Bucket>() + 5;
        let mut t = Table::new(len);
        assert_eq!(t.as_ptr() as usize % HUGE_PAGE, 0);
        assert_eq!(t.len(), len);
        assert!(t.iter().all(|b| b.keys == [0; SLOTS] && b.tags == [0; 8]));
        t[len - 1].keys[3] = 42;
        let copy = t.clone();
        assert_eq!(copy[len - 1].keys[3], 42);
        assert_eq!(copy.as_ptr() as usize % HUGE_PAGE, 0);
        let small = Table::new(3);
        assert_eq!(small.as_ptr() as usize % 64, 0);
        assert_eq!(small.len(), 3);
    }
    use super::*;
    use std::collections::HashSet;

    /// The reference: the previous design (two hash sets), same rotation rule.
    #[derive(Default)]
    struct Model {
        cur: HashSet<u64>,
        prev: HashSet<u64>,
        half: usize,
    }

    impl Model {
        fn contains(&self, k: u64) -> bool {
            self.cur.contains(&k) || self.prev.contains(&k)
        }
        fn insert(&mut self, k: u64) {
            if self.cur.len() >= self.half {
                std::mem::swap(&mut self.cur, &mut self.prev);
                self.cur.clear();
            }
            self.cur.insert(k);
        }
    }

    fn splitmix(x: &mut u64) -> u64 {
        *x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Random charges and replays (recent and old, key 0 included): the table answers exactly as
    /// the two-hash-set model, for good and deliberately bad multipliers, whether keys go in by
    /// [`KeySet::insert_at`] or by the fast path ([`KeySet::vacancy`]), which never offers a
    /// slot for a remembered key.
    #[test]
    fn answers_like_two_hash_sets() {
        for (max, mult) in [
            (2, 0),
            (8, 0),
            (64, 0),
            (1000, 0),
            (64, 1),
            (256, 1 << 40),
            (4096, 1),
        ] {
            let mut s = if mult == 0 {
                KeySet::new(max)
            } else {
                KeySet::with_multiplier(max, mult)
            };
            let mut m = Model {
                half: (max / 2).max(1),
                ..Model::default()
            };
            let mut rng = 7u64;
            let mut seen = Vec::new();
            // Long enough for thousands of rotations (the 8-bit tags wrap many times).
            for step in 0..40_000 {
                let r = splitmix(&mut rng);
                let key = match r % 10 {
                    0 if !seen.is_empty() => seen[(r >> 8) as usize % seen.len()],
                    1 if !seen.is_empty() => {
                        seen[seen.len() - 1 - (r >> 8) as usize % seen.len().min(max)]
                    }
                    2 => (r >> 8) % 4, // small keys, 0 included
                    // With multiplier 1, keys below 2^64 / buckets share home bucket 0: long
                    // overflow chains.
                    _ if mult == 1 => splitmix(&mut rng) % 5_000,
                    _ => splitmix(&mut rng),
                };
                let got = s.lookup(key);
                assert_eq!(
                    got.is_err(),
                    m.contains(key),
                    "max {max} step {step} key {key}"
                );
                if max <= 64 {
                    assert_eq!(
                        s.in_older_generation_only(key),
                        m.prev.contains(&key) && !m.cur.contains(&key),
                        "max {max} step {step} key {key}"
                    );
                }
                if (r >> 56).is_multiple_of(8) {
                    // The general insert (recovery): refreshes a key the older generation holds.
                    s.insert(key);
                    m.insert(key);
                    seen.push(key);
                } else if let Ok(slot) = got {
                    // Half the inserts by the charge's fast path where it applies.
                    let fast = s.vacancy(key).filter(|_| (r >> 20) & 1 == 0);
                    if let Some(v) = fast {
                        v.fill(key);
                    } else {
                        s.insert_at(key, slot);
                    }
                    m.insert(key);
                    seen.push(key);
                } else {
                    assert!(
                        s.vacancy(key).is_none(),
                        "a vacancy for a remembered key: max {max} step {step} key {key}"
                    );
                }
                if step % 997 == 0 {
                    let mut a: Vec<_> = s.iter_oldest_first().collect();
                    let mut b: Vec<_> = m.prev.iter().chain(&m.cur).copied().collect();
                    a.sort_unstable();
                    b.sort_unstable();
                    assert_eq!(a, b);
                }
            }
        }
    }

    /// The SIMD and the portable liveness masks agree (tags equal to either epoch byte, and
    /// bytes differing from them in one bit, the case a carry-prone SWAR would get wrong).
    #[test]
    fn liveness_masks_agree() {
        let mut rng = 11u64;
        for _ in 0..200_000 {
            let r = splitmix(&mut rng);
            let e = (r >> 56) as u8;
            let (cur, prev) = (ONES * u64::from(e), ONES * u64::from(e.wrapping_sub(1)));
            let mut tags = [0u8; 8];
            for (j, t) in tags.iter_mut().enumerate() {
                let pick = (r >> (3 * j)) & 7;
                *t = match pick {
                    0 | 1 => e,
                    2 | 3 => e.wrapping_sub(1),
                    4 => e ^ (1 << ((r >> 40) as u32 % 8)),
                    5 => e.wrapping_sub(2),
                    _ => (splitmix(&mut rng) >> 8) as u8,
                };
            }
            let t = u64::from_le_bytes(tags);
            let want = tags
                .iter()
                .enumerate()
                .map(|(j, &b)| u32::from(b == e || b == e.wrapping_sub(1)) << j)
                .sum::<u32>();
            assert_eq!(live_mask(t, cur, prev), want, "tags {tags:?} epoch {e}");
            assert_eq!(
                live_mask_swar(t, cur, prev),
                want,
                "tags {tags:?} epoch {e}"
            );
        }
    }

    #[test]
    fn rebuilds_the_same_generations_from_its_image() {
        let mut s = KeySet::new(16);
        for k in 0..13u64 {
            s.insert(k * 3);
        }
        let mut r = KeySet::new(16);
        for k in s.iter_oldest_first() {
            r.insert(k);
        }
        for k in 0..60 {
            assert_eq!(s.contains(k), r.contains(k), "key {k}");
        }
        // One more rotation forgets the same older generation in both.
        for k in 100..108 {
            s.insert(k);
            r.insert(k);
        }
        for k in 0..120 {
            assert_eq!(s.contains(k), r.contains(k), "key {k}");
        }
    }
}
