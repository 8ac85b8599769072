//! The sub-ledger's idempotency key set: two generations of at most `half` keys each in one flat
//! open-addressing table of cache lines, so a charge's lookup touches one 64-byte line (and can be
//! prefetched long before the charge: [`KeySet::prefetch`]).
//!
//! Layout: `buckets` is a vector of 64-byte-aligned buckets of 8 `u64` slots; slots 0..4
//! hold generation A, slots 4..8 generation B, so a key's two generations sit side by side in the
//! line of its home bucket. Which half is current flips at each rotation. Each half is its own
//! linear-probing table (a full half continues in the next bucket's same half); nothing is
//! deleted except by a rotation, which clears the older half whole. Slot value 0 means empty: the
//! key 0 is kept in a flag per generation instead.
//!
//! Home bucket: the high bits of `key * mult` scaled to the bucket count (`(key * mult) * n >>
//! 64`, a multiply instead of a division) with `mult` an odd multiplier drawn once per process, so
//! keys chosen to collide (impression keys are a fixed-seed hash of request and imp ids) cannot
//! pile into one bucket run. Placement never changes an answer, only where a key is stored, so
//! the state machine stays deterministic.
//!
//! Each half holds at most `half` keys in `4 * buckets >= 3 * half` slots (load <= 1/3), so a
//! probe always ends. Guarantee (as before): a key is remembered until two rotations later, i.e.
//! at least `half` further inserts; the set holds at most `2 * half` keys.

use std::sync::OnceLock;

/// One cache line: generation A in slots 0..4, generation B in slots 4..8.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(64))]
struct Bucket([u64; 8]);

/// Whether a bucket line holds `key` in either half (eight compares, no early exit: one branch).
#[inline(always)]
fn holds(s: &[u64; 8], key: u64) -> bool {
    s.iter().fold(false, |hit, &k| hit | (k == key))
}

/// Used slots of the half starting at `half` (halves fill left to right, so this is also the
/// first free slot).
#[inline(always)]
fn used(s: &[u64; 8], half: usize) -> usize {
    s[half..half + HALF_SLOTS]
        .iter()
        .map(|&k| (k != 0) as usize)
        .sum()
}

/// Slots per generation in a bucket.
const HALF_SLOTS: usize = 4;

/// Where [`KeySet::lookup`] found room for the key in the current generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot(usize);

/// Marks "the key is 0: goes to the current generation's flag".
const ZERO_SLOT: usize = usize::MAX;

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

#[derive(Debug, Clone)]
pub struct KeySet {
    buckets: Vec<Bucket>,
    /// `buckets.len()`.
    n: usize,
    mult: u64,
    /// Slot offset of the current generation's half: 0 (A) or 4 (B).
    cur: usize,
    cur_len: usize,
    half: usize,
    /// Key 0 remembered in generation A / B.
    zero: [bool; 2],
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
        // `4 * n >= 3 * half` slots per generation: at most a third of them used, so a probe
        // rarely leaves its home line (at a half, one in six or so does).
        let buckets = (3 * half).div_ceil(HALF_SLOTS).max(2);
        KeySet {
            buckets: vec![Bucket::default(); buckets],
            n: buckets,
            mult: mult | 1,
            cur: 0,
            cur_len: 0,
            half,
            zero: [false; 2],
        }
    }

    #[inline(always)]
    fn home(&self, key: u64) -> usize {
        ((u128::from(key.wrapping_mul(self.mult)) * self.n as u128) >> 64) as usize
    }

    /// Starts loading the line `key` will be looked up in (no effect on the answer).
    #[inline(always)]
    pub fn prefetch(&self, key: u64) {
        if let Some(b) = self.buckets.get(self.home(key)) {
            prefetch_line(b);
        }
    }

    /// Whether `key` is remembered (either generation).
    pub fn contains(&self, key: u64) -> bool {
        self.lookup(key).is_err()
    }

    /// `Err(())` if `key` is remembered; else where it goes in the current generation (valid
    /// until the set changes; pass it to [`KeySet::insert_at`]). The usual case reads the home
    /// line only: no hit there and neither half full.
    #[inline(always)]
    #[allow(clippy::result_unit_err)]
    pub fn lookup(&self, key: u64) -> Result<Slot, ()> {
        let i = self.home(key);
        if key != 0
            && let Some(b) = self.buckets.get(i)
        {
            let s = &b.0;
            if holds(s, key) {
                return Err(());
            }
            let cur = self.cur & HALF_SLOTS;
            let prev = HALF_SLOTS - cur;
            let used_cur = used(s, cur);
            if used_cur < HALF_SLOTS && s[prev + 3] == 0 {
                return Ok(Slot(i * 8 + cur + used_cur));
            }
        }
        self.lookup_slow(key)
    }

    /// [`KeySet::lookup`] in general: key 0, and probes past a full half.
    #[cold]
    #[inline(never)]
    fn lookup_slow(&self, key: u64) -> Result<Slot, ()> {
        if key == 0 {
            return if self.zero[0] || self.zero[1] {
                Err(())
            } else {
                Ok(Slot(ZERO_SLOT))
            };
        }
        let cur_is_b = self.cur != 0;
        let mut i = self.home(key);
        let mut room = ZERO_SLOT;
        let mut prev_open = true;
        loop {
            let s = &self.buckets[i].0;
            if holds(s, key) {
                return Err(());
            }
            // Halves fill left to right: the used count is the first free slot.
            let (used_a, used_b) = (used(s, 0), used(s, HALF_SLOTS));
            let (used_cur, used_prev) = if cur_is_b {
                (used_b, used_a)
            } else {
                (used_a, used_b)
            };
            if room == ZERO_SLOT && used_cur < HALF_SLOTS {
                room = i * 8 + self.cur + used_cur;
            }
            prev_open &= used_prev == HALF_SLOTS;
            if room != ZERO_SLOT && !prev_open {
                return Ok(Slot(room));
            }
            i = if i + 1 == self.n { 0 } else { i + 1 };
        }
    }

    /// Remembers `key`, which [`KeySet::lookup`] just answered `Ok(slot)` for (nothing changed
    /// the set in between).
    #[inline]
    pub fn insert_at(&mut self, key: u64, slot: Slot) {
        if self.cur_len >= self.half {
            self.rotate();
            self.insert(key);
            return;
        }
        self.cur_len += 1;
        if slot.0 == ZERO_SLOT {
            debug_assert_eq!(key, 0);
            self.zero[self.cur / HALF_SLOTS] = true;
            return;
        }
        let s = &mut self.buckets[slot.0 / 8].0[slot.0 % 8];
        debug_assert_eq!(*s, 0, "insert_at an occupied slot");
        *s = key;
    }

    /// Remembers `key` in the current generation (a no-op if it is there already; rotates
    /// first when the generation is full).
    pub fn insert(&mut self, key: u64) {
        if self.cur_len >= self.half {
            self.rotate();
        }
        if key == 0 {
            let z = &mut self.zero[self.cur / HALF_SLOTS];
            if !*z {
                *z = true;
                self.cur_len += 1;
            }
            return;
        }
        let mut i = self.home(key);
        loop {
            let b = &mut self.buckets[i].0;
            for s in &mut b[self.cur..self.cur + HALF_SLOTS] {
                if *s == key {
                    return;
                }
                if *s == 0 {
                    *s = key;
                    self.cur_len += 1;
                    return;
                }
            }
            i = if i + 1 == self.n { 0 } else { i + 1 };
        }
    }

    /// The current generation becomes the older one; the older one is forgotten.
    fn rotate(&mut self) {
        let next = HALF_SLOTS - self.cur;
        for b in &mut self.buckets {
            b.0[next..next + HALF_SLOTS].fill(0);
        }
        self.zero[next / HALF_SLOTS] = false;
        self.cur = next;
        self.cur_len = 0;
    }

    /// Whether `key` is in the older generation and not the current one (checks, simulation;
    /// a scan, not for the hot path).
    pub fn in_older_generation_only(&self, key: u64) -> bool {
        let prev = HALF_SLOTS - self.cur;
        let in_half = |h: usize| {
            if key == 0 {
                self.zero[h / HALF_SLOTS]
            } else {
                self.buckets
                    .iter()
                    .any(|b| b.0[h..h + HALF_SLOTS].contains(&key))
            }
        };
        in_half(prev) && !in_half(self.cur)
    }

    /// Every remembered key, the older generation first (re-inserting in this order rebuilds
    /// the same generations).
    pub fn iter_oldest_first(&self) -> impl Iterator<Item = u64> + '_ {
        let prev = HALF_SLOTS - self.cur;
        [prev, self.cur].into_iter().flat_map(move |h| {
            let zero = self.zero[h / HALF_SLOTS].then_some(0u64);
            zero.into_iter().chain(
                self.buckets
                    .iter()
                    .flat_map(move |b| b.0[h..h + HALF_SLOTS].iter().copied())
                    .filter(|&k| k != 0),
            )
        })
    }

    /// Keys remembered (both generations).
    pub fn len(&self) -> usize {
        self.iter_oldest_first().count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Asks the CPU to start loading the cache line of `v` (a hint: no effect on results; a no-op
/// off x86_64).
#[inline(always)]
pub fn prefetch_line<T>(v: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint that never faults; `v` is a live reference anyway.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
            (v as *const T).cast::<i8>(),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}

#[cfg(test)]
mod tests {
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
    /// the two-hash-set model, for good and deliberately bad multipliers.
    #[test]
    fn answers_like_two_hash_sets() {
        for (max, mult) in [(2, 0), (8, 0), (64, 0), (1000, 0), (64, 1), (256, 1 << 40)] {
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
            for step in 0..20_000 {
                let r = splitmix(&mut rng);
                let key = match r % 10 {
                    0 if !seen.is_empty() => seen[(r >> 8) as usize % seen.len()],
                    1 if !seen.is_empty() => {
                        seen[seen.len() - 1 - (r >> 8) as usize % seen.len().min(max)]
                    }
                    2 => (r >> 8) % 4, // small keys, 0 included
                    _ => splitmix(&mut rng),
                };
                let got = s.lookup(key);
                assert_eq!(
                    got.is_err(),
                    m.contains(key),
                    "max {max} step {step} key {key}"
                );
                if let Ok(slot) = got {
                    s.insert_at(key, slot);
                    m.insert(key);
                    seen.push(key);
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
