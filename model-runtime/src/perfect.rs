//! The perfect-tree kernel: every tree padded to a perfect binary tree of the model's depth,
//! children implicit (heap order), and every split a plain `slot <= threshold` compare.
//!
//! Built from the fast layout (`fast.rs`), whose steps already read "first child iff
//! `(v ^ flip) <= t`, NaN to the second child". This kernel removes the rest of the per-node
//! work by moving it into a per-row encoding of "slots":
//!
//! - slots `0..width`: the fast-encoded feature values;
//! - a negated slot (`-v`, sign bit flipped) for every feature some mirrored split reads, so a
//!   mirrored node just reads that slot (no flag, no xor in the step);
//! - a set slot per distinct (feature, category set): `0.0` if the row's category is in the
//!   set, else `2.0`; the node compares it with `0.5`.
//!
//! A tree of depth `d < D` is padded: a leaf above depth `D` becomes a subtree of dummy splits
//! whose every leaf holds the same value, so whichever way a dummy goes the result is exact.
//! Each tree is `2^(D+1) - 1` entries in heap order (children of `k`: `2k+1`, `2k+2`); split
//! entries hold thresholds, leaf entries (the last `2^D`) hold leaf values, in one `f64`
//! array, with a parallel `u32` slot array. A row takes exactly `D` steps per tree, each
//! `k = 2k + 1 + !(row[slot[k]] <= value[k])`: two loads from the tree, one from the row, a
//! compare and an add, with no data-dependent branch and no child pointers.
//!
//! Rows are stored column-major in the scratch block (slot `s` of block row `r` at
//! `s * BLOCK_ROWS + r`) and slot numbers are stored premultiplied by `BLOCK_ROWS`, so the
//! rows of a chunk are one base pointer plus constant offsets: the step compiles to six
//! instructions (three loads, `ucomisd`, `setb`, `lea`) with every lane in a register.
//!
//! The block loader stores each row's fast-encoded features (`store_features`), then
//! `fill_derived` computes the derived slots a column at a time over the block's rows,
//! grouped by kind so no value dispatches on a rule: negated columns; for a categorical
//! feature with a small domain (`TABLE_ENTRIES_MAX`), one load per row from a table
//! position -> bitmask of the feature's sets holding it (64 sets per word), then each set
//! column is a bit extract (`2.0` out of the set is the float with only bit 62 set, so the
//! extract is shifts and a mask that vectorise); a wider domain probes each set's bitset.
//!
//! Scoring interleaves independent walks to hide load latency: tree by tree, 8 rows of the
//! block at a time; the last `rows % 8` rows of a block walk 8 trees at a time each.
//! Leaf values are added per row in tree order, so sums are bit-identical to a tree-by-tree
//! loop.
//!
//! Chosen only when padding stays cheap (`PERFECT_DEPTH_MAX`, `PAD_FACTOR_MAX`) and the set
//! slots cost less to encode than the walk (`sets <= trees * depth`); otherwise the fast
//! kernel scores.
//!
//! Measured (perf/gbdt, 100-tree Avazu models of depth 6, single thread, shared 2-core EPYC
//! Milan, +-20 % noise), ns per row at batch 100: fast kernel 1670-2000 (categorical) and
//! 910-1000 (numeric); this layout with row-major rows and per-lane `root` arithmetic ~780 /
//! ~670 (the row offsets spilled to the stack); with local heap indices and per-lane base
//! pointers ~700 / ~590; column-major block ~650 / ~550;
//! 16-row chunks ~600 / ~525 (and ~10 % at large batches). The criteo depth-7 fixture (padding
//! 5.1x its real nodes) went from ~2100 to ~800, hence `PAD_FACTOR_MAX` = 8. A 32-row block
//! measured no better than 16 there (the block then outgrows L1).
//!
//! Measured on the shared 2-core Intel Xeon VM (Ice Lake class, 2026-11-29, same session,
//! best of 11 passes, ~+-10 % noise), ns per row at batch 100, categorical / numeric model:
//! before this encoding ~600 / ~510, with the row encoder at ~20 % of the categorical
//! model's samples (one `match` and bitset probe per derived slot and row); per-feature
//! set tables, column-wise fill: ~515-550; fixed 8-row fill chunks and the `2.0`
//! out-of-set value: ~515; a 32-row block: ~475-505 / ~455-470 (64 rows: no better at
//! batch 100, and batch 1 ~35 % slower as each block fills more rows); the fill now takes
//! ~9-13 % of the samples. lleaves in the same runs: 553-594 / 555-1007; batch 1 went from
//! ~950-1010 to ~1000-1040 (the per-block fill has a fixed cost per derived column).
//! A `-C target-cpu=native` build ran ~10-15 % slower than the plain one both before
//! (~685-705 / ~615-640) and after (~500-555 / ~490-557); its cause was not found (the
//! walk's loop is the same code).
//! Loading the root's slot and threshold once for a chunk's 8 lanes (all start there)
//! measured within noise (0-4 %) and was not kept.
//! With `-C target-cpu=native` LLVM loaded a walk's 8 leaves with one `vgatherqpd` (~12 % of
//! the kernel's samples): `scalar_leaf` keeps them scalar loads.

use std::collections::HashMap;

use crate::compiled::BLOCK_ROWS;
use crate::fast::{FastForest, FeaturePlan, Split, SplitKind};
use crate::spec::Accumulate;

/// Deepest model scored with padded trees (a tree is `2^(D+1) - 1` entries).
pub(crate) const PERFECT_DEPTH_MAX: u32 = 10;
/// Padded entries may be at most this many times the real node count (plus `PAD_SLACK`).
const PAD_FACTOR_MAX: usize = 8;
/// Small models may always pad up to this many entries.
const PAD_SLACK: usize = 4096;
/// Independent walks kept in registers (tails, small batches).
const LANES: usize = 8;
/// Rows of one tree walked together where the block has them. 8: eight heap positions plus the
/// row base and the tree's two array pointers fit the 16 general-purpose registers. 16 measured
/// ~10 % faster on an AMD EPYC VM but 15-25 % slower on an Intel Xeon one (2026-11-29:
/// categorical model 640-690 vs 740-790 ns/row, numeric 565-590 vs 710-875), where the extra
/// lanes spill.
const WIDE_LANES: usize = 8;
/// Threshold of a set slot (`0.0` = in the set = first child, `OUT_OF_SET` = second).
const SET_THRESHOLD: f64 = 0.5;
/// A set slot's value for a category outside the set: `2.0`, the float whose only set bit is
/// bit 62, so `set_value_of_bit` is a shift.
const OUT_OF_SET_BIT: u32 = 62;
/// Rows per fixed-length loop of `fill_derived` (`BLOCK_ROWS` is a multiple of it).
const FILL_ROWS: usize = 8;
const _: () = assert!(BLOCK_ROWS.is_multiple_of(FILL_ROWS));
/// Widest table of one categorical feature's sets, in (encoded position, 64-set chunk)
/// entries of 8 bytes; a wider feature probes each set's bitset instead.
const TABLE_ENTRIES_MAX: usize = 4096;

/// One derived slot the row encoder fills.
#[derive(Debug, Clone, Copy)]
enum Derived {
    /// `-row[feature]` (sign bit flipped).
    Negated { feature: u32 },
    /// `0.0` if the encoded category of `row[feature]` is in the set at `words[offset..]`.
    InSet { feature: u32, offset: u32 },
}

/// The padded forest; see the module docs.
#[derive(Debug, Clone)]
pub(crate) struct PerfectForest {
    depth: u32,
    /// Entries per tree: `2^(depth+1) - 1`.
    stride: usize,
    trees: usize,
    /// Thresholds of split entries, values of leaf entries; `trees * stride`.
    values: Vec<f64>,
    /// Row slot each split entry reads (0 for leaf entries); same length as `values`.
    slots: Vec<u32>,
    /// Input features; derived slot `i` is row slot `width + i`.
    width: usize,
    derived: Vec<Derived>,
    /// Padded category sets (copied from the fast layout), for `Derived::InSet`.
    words: Vec<u32>,
    /// `derived`, grouped by kind for `fill_derived`.
    fill: DerivedFill,
}

/// The derived slots grouped by how `fill_derived` computes them, so that each derived column
/// is one loop over the block's rows with no per-value dispatch. Columns are derived indices
/// (row slot `width + column`).
#[derive(Debug, Clone, Default)]
struct DerivedFill {
    /// `(feature, column)`: the column is the feature negated.
    negated: Vec<(u32, u32)>,
    /// Categorical features with a small domain: every set slot from one table load per row.
    tables: Vec<SetTable>,
    /// `(feature, words offset, column)`: a set of a feature whose domain is too wide for a
    /// table, probed in `words`.
    probes: Vec<(u32, u32, u32)>,
}

/// Which of one categorical feature's sets contain each encoded category position.
#[derive(Debug, Clone)]
struct SetTable {
    feature: u32,
    /// Derived column of the feature's `i`-th set.
    columns: Vec<u32>,
    /// Bit `i` of `masks[position * chunks + c]`: set `64 * c + i` contains `position`.
    masks: Vec<u64>,
    /// `columns.len()` in 64-set chunks.
    chunks: usize,
}

/// Builds one tree's heap-ordered entries from the fast layout.
struct TreeBuilder<'a> {
    fast: &'a FastForest,
    forest: &'a mut PerfectForest,
    negated: &'a mut HashMap<u32, u32>,
    sets: &'a mut HashMap<(u32, Vec<u32>), u32>,
    base: usize,
}

impl PerfectForest {
    /// The padded layout of `fast` (trees rooted at `roots`, deepest `depth`, `node_count`
    /// real nodes), or `None` when padding or set encoding would cost more than it saves.
    pub(crate) fn build(
        fast: &FastForest,
        width: usize,
        roots: &[u32],
        depth: u32,
        node_count: usize,
    ) -> Option<Self> {
        if depth > PERFECT_DEPTH_MAX {
            return None;
        }
        let stride = (1usize << (depth + 1)) - 1;
        let entries = stride.checked_mul(roots.len())?;
        if entries > PAD_FACTOR_MAX * node_count + PAD_SLACK {
            return None;
        }
        let mut forest = PerfectForest {
            depth,
            stride,
            trees: roots.len(),
            values: vec![0.0; entries],
            slots: vec![0; entries],
            width,
            derived: Vec::new(),
            words: vec![0],
            fill: DerivedFill::default(),
        };
        let (mut negated, mut sets) = (HashMap::new(), HashMap::new());
        for (tree, &root) in roots.iter().enumerate() {
            let mut builder = TreeBuilder {
                fast,
                forest: &mut forest,
                negated: &mut negated,
                sets: &mut sets,
                base: tree * stride,
            };
            builder.place(root, 0, 0);
        }
        let too_wide = u32::try_from(BLOCK_ROWS * forest.row_stride()).is_err();
        if too_wide || sets.len() > roots.len() * depth as usize {
            return None;
        }
        // Slot s of block row r is at s * BLOCK_ROWS + r; fits u32 (checked above).
        for slot in &mut forest.slots {
            *slot *= BLOCK_ROWS as u32;
        }
        forest.fill = forest.plan_fill(&fast.plans, TABLE_ENTRIES_MAX);
        forest.check_invariants();
        Some(forest)
    }

    /// The facts the unchecked loads rely on; a violation is a bug of this crate.
    fn check_invariants(&self) {
        assert_eq!(self.values.len(), self.trees * self.stride);
        assert_eq!(self.slots.len(), self.values.len());
        let columns = BLOCK_ROWS * self.row_stride();
        assert!(u32::try_from(columns).is_ok());
        assert!(
            self.slots
                .iter()
                .all(|&s| (s as usize) + BLOCK_ROWS <= columns)
        );
        for derived in &self.derived {
            match *derived {
                Derived::Negated { feature } => assert!((feature as usize) < self.width),
                Derived::InSet { feature, offset } => {
                    assert!((feature as usize) < self.width);
                    assert!((offset as usize) < self.words.len());
                }
            }
        }
    }

    /// Values per encoded row: features, then derived slots.
    pub(crate) fn row_stride(&self) -> usize {
        self.width + self.derived.len()
    }

    /// Groups the derived slots by kind; the sets of a categorical feature whose encoded
    /// table has at most `table_entries_max` entries (positions x 64-set chunks) become one
    /// `SetTable`; the sets of wider features are probed one by one.
    fn plan_fill(&self, plans: &[FeaturePlan], table_entries_max: usize) -> DerivedFill {
        let mut fill = DerivedFill::default();
        let mut sets_of: Vec<Vec<(u32, u32)>> = vec![Vec::new(); self.width];
        for (column, rule) in (0u32..).zip(&self.derived) {
            match *rule {
                Derived::Negated { feature } => fill.negated.push((feature, column)),
                Derived::InSet { feature, offset } => {
                    sets_of[feature as usize].push((offset, column));
                }
            }
        }
        for (feature, sets) in (0u32..).zip(sets_of) {
            let FeaturePlan::Category { words } = plans[feature as usize] else {
                continue;
            };
            let positions = 32 * (words as usize + 1);
            if positions * sets.len().div_ceil(64) <= table_entries_max {
                fill.tables.push(self.set_table(feature, positions, &sets));
            } else {
                let probes = sets
                    .iter()
                    .map(|&(offset, column)| (feature, offset, column));
                fill.probes.extend(probes);
            }
        }
        fill
    }

    /// The table of `feature`'s `sets` (`(words offset, column)`) over its `positions`.
    fn set_table(&self, feature: u32, positions: usize, sets: &[(u32, u32)]) -> SetTable {
        let chunks = sets.len().div_ceil(64);
        let mut masks = vec![0u64; positions * chunks];
        for (i, &(offset, _)) in sets.iter().enumerate() {
            for position in 0..positions {
                if self.contains(offset, position) {
                    masks[position * chunks + i / 64] |= 1 << (i % 64);
                }
            }
        }
        SetTable {
            feature,
            columns: sets.iter().map(|&(_, column)| column).collect(),
            masks,
            chunks,
        }
    }

    /// Whether the padded set at `words[offset..]` holds category `position` (which lies
    /// inside the padded set: `encode_category`).
    #[inline(always)]
    fn contains(&self, offset: u32, position: usize) -> bool {
        let word = self.words[offset as usize + (position >> 5)];
        (word >> (position & 31)) & 1 == 1
    }

    /// Stores row `r`'s fast-encoded `features` into a column-major block (slot `s` of row `r`
    /// at `block[s * BLOCK_ROWS + r]`); `fill_derived` adds the derived slots.
    #[inline]
    pub(crate) fn store_features(&self, features: &[f64], block: &mut [f64], r: usize) {
        assert!(r < BLOCK_ROWS && block.len() >= BLOCK_ROWS * self.width);
        let plain = &mut block[..BLOCK_ROWS * self.width];
        for (column, &value) in plain.chunks_exact_mut(BLOCK_ROWS).zip(features) {
            column[r] = value;
        }
    }

    /// Computes the derived slots of the first `rows` rows of a column-major block whose
    /// features `store_features` stored, one derived column at a time.
    pub(crate) fn fill_derived(&self, block: &mut [f64], rows: usize) {
        assert!(rows <= BLOCK_ROWS && block.len() >= BLOCK_ROWS * self.row_stride());
        let (plain, derived) = block.split_at_mut(BLOCK_ROWS * self.width);
        let plain = &*plain;
        // Whole chunks of `FILL_ROWS` (fixed-length, vectorised loops) unless the block has
        // fewer rows; the rows past `rows` get values nobody reads.
        let padded = if rows < FILL_ROWS {
            rows
        } else {
            rows.next_multiple_of(FILL_ROWS)
        };
        for &(feature, target) in &self.fill.negated {
            let source = column(plain, feature, padded);
            fill_chunked(column_mut(derived, target, padded), source, |v| -v);
        }
        for table in &self.fill.tables {
            let positions = column(plain, table.feature, rows);
            fill_from_table(table, positions, derived, padded);
        }
        for &(feature, offset, target) in &self.fill.probes {
            let positions = column(plain, feature, rows);
            for (value, &position) in column_mut(derived, target, rows).iter_mut().zip(positions) {
                *value = set_value(self.contains(offset, position.to_bits() as usize));
            }
        }
    }

    /// Adds every tree's leaf value, in tree order, to `sums[r]` for each of the `sums.len()`
    /// rows of the column-major block `features` (see `store_row`): rows in chunks of `WIDE_LANES`,
    /// then `LANES`, of one tree at a time; the last `rows % 8` rows by `add_tail`.
    pub(crate) fn add_block(&self, features: &[f64], sums: &mut [f64], accumulate: Accumulate) {
        let rows = sums.len();
        assert!(rows <= BLOCK_ROWS && features.len() >= BLOCK_ROWS * self.row_stride());
        let wide = rows - rows % WIDE_LANES;
        self.add_rows::<WIDE_LANES>(features, &mut sums[..wide], 0, accumulate);
        let narrow = rows - rows % LANES;
        self.add_rows::<LANES>(features, &mut sums[wide..narrow], wide, accumulate);
        if narrow < rows {
            self.add_tail(features, &mut sums[narrow..], narrow, accumulate);
        }
    }

    /// Block rows `offset..offset + sums.len()` (a multiple of `N`), `N` rows of one tree at
    /// a time.
    fn add_rows<const N: usize>(
        &self,
        features: &[f64],
        sums: &mut [f64],
        offset: usize,
        accumulate: Accumulate,
    ) {
        for tree in 0..self.trees {
            let root = tree * self.stride;
            for (first, chunk) in sums.chunks_exact_mut(N).enumerate() {
                let starts: [usize; N] = std::array::from_fn(|j| offset + first * N + j);
                let leaves = self.walk([root; N], starts, features);
                for (sum, leaf) in chunk.iter_mut().zip(leaves) {
                    *sum = accumulate.add(*sum, leaf);
                }
            }
        }
    }

    /// The last `sums.len() < 8` rows (block rows from `offset`), one row at a time: lanes
    /// are 8 consecutive trees; a short last chunk repeats its last tree and drops the extra
    /// results.
    fn add_tail(&self, features: &[f64], sums: &mut [f64], offset: usize, accumulate: Accumulate) {
        for (r, sum) in sums.iter_mut().enumerate() {
            let starts = [offset + r; LANES];
            for first in (0..self.trees).step_by(LANES) {
                let count = LANES.min(self.trees - first);
                let roots = std::array::from_fn(|j| (first + j.min(count - 1)) * self.stride);
                let leaves = self.walk(roots, starts, features);
                for &leaf in &leaves[..count] {
                    *sum = accumulate.add(*sum, leaf);
                }
            }
        }
    }

    /// Walks 8 lanes `depth` steps (lane j: the tree whose entries start at `roots[j]`, block
    /// row `starts[j]`) and returns their leaf values.
    #[inline(always)]
    fn walk<const N: usize>(
        &self,
        roots: [usize; N],
        starts: [usize; N],
        features: &[f64],
    ) -> [f64; N] {
        debug_assert!(roots.iter().all(|&r| r + self.stride <= self.values.len()));
        debug_assert!(starts.iter().all(|&s| s < BLOCK_ROWS));
        // SAFETY (all pointer arithmetic below): each root is a tree's first entry, so
        // `root + k` stays inside `values`/`slots` (same length) while `k < stride`, which
        // holds for the heap position after at most `depth` steps; every slot entry is
        // `s * BLOCK_ROWS` with `s < row_stride` (`check_invariants`), each start is
        // < BLOCK_ROWS, and `add_block` asserted `features.len() >= BLOCK_ROWS * row_stride`.
        let values = roots.map(|r| unsafe { self.values.as_ptr().add(r) });
        let slots = roots.map(|r| unsafe { self.slots.as_ptr().add(r) });
        let rows = starts.map(|s| unsafe { features.as_ptr().add(s) });
        let mut k = [0usize; N];
        for _ in 0..self.depth {
            for j in 0..N {
                k[j] = scalar(unsafe { step(values[j], slots[j], rows[j], k[j]) });
            }
        }
        std::array::from_fn(|j| scalar_leaf(unsafe { *values[j].add(k[j]) }))
    }
}

/// The set slots of one table feature, for the block rows whose encoded positions are
/// `positions`, into the first `padded` rows of the derived `columns` (column-major).
fn fill_from_table(table: &SetTable, positions: &[f64], columns: &mut [f64], padded: usize) {
    for (chunk, targets) in table.columns.chunks(64).enumerate() {
        // Rows past `positions.len()` get mask 0.
        let mut masks = [0u64; BLOCK_ROWS];
        for (mask, position) in masks.iter_mut().zip(positions) {
            *mask = table.masks[position.to_bits() as usize * table.chunks + chunk];
        }
        for (bit, &target) in targets.iter().enumerate() {
            let target = column_mut(columns, target, padded);
            fill_chunked(target, &masks[..padded], |mask| {
                set_value_of_bit(mask >> bit)
            });
        }
    }
}

/// `target[i] = value(source[i])` (same lengths), `FILL_ROWS` at a time, then the rest.
#[inline(always)]
fn fill_chunked<T: Copy>(target: &mut [f64], source: &[T], value: impl Fn(T) -> f64) {
    let mut chunks = target.chunks_exact_mut(FILL_ROWS);
    let mut sources = source.chunks_exact(FILL_ROWS);
    for (values, sources) in (&mut chunks).zip(&mut sources) {
        for (v, &s) in values.iter_mut().zip(sources) {
            *v = value(s);
        }
    }
    let rest = chunks.into_remainder().iter_mut().zip(sources.remainder());
    for (v, &s) in rest {
        *v = value(s);
    }
}

/// The first `rows` values of column `index` of a column-major block.
#[inline(always)]
fn column(block: &[f64], index: u32, rows: usize) -> &[f64] {
    &block[index as usize * BLOCK_ROWS..][..rows]
}

/// The first `rows` values of column `index` of a column-major block, to write.
#[inline(always)]
fn column_mut(block: &mut [f64], index: u32, rows: usize) -> &mut [f64] {
    &mut block[index as usize * BLOCK_ROWS..][..rows]
}

/// A set slot's value: `0.0` (first child) for a category in the set, else `2.0`.
#[inline(always)]
fn set_value(in_set: bool) -> f64 {
    set_value_of_bit(u64::from(in_set))
}

/// `set_value` of bit 0 of `bits`, branch-free: shifts and masks that vectorise.
#[inline(always)]
fn set_value_of_bit(bits: u64) -> f64 {
    f64::from_bits((!bits & 1) << OUT_OF_SET_BIT)
}

/// Keeps a lane's heap position in a general-purpose register, so LLVM cannot turn the lanes into
/// a vector of gathers. With `-C target-cpu=native` on AVX2/AVX-512 hosts it otherwise does, and
/// on Intel CPUs with the Gather Data Sampling (Downfall) microcode mitigation a gather costs tens
/// of cycles: the kernel measured 5x slower per row (perf/REPORT.md). The scalar loads of the N
/// independent lanes are what overlaps the misses; an empty `asm!` costs no instruction.
#[inline(always)]
fn scalar(mut k: usize) -> usize {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    // SAFETY: an empty template: no instruction, no memory access, no stack use.
    unsafe {
        std::arch::asm!("/* {0} */", inout(reg) k, options(pure, nomem, nostack, preserves_flags));
    }
    k
}

/// Keeps a lane's leaf value a scalar load, for the reason `scalar` gives: without it LLVM
/// loads the `N` leaves of a walk with one `vgatherqpd` under `-C target-cpu=native`, which
/// took ~12 % of the kernel's samples on the Intel VM.
#[inline(always)]
fn scalar_leaf(mut leaf: f64) -> f64 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: an empty template: no instruction, no memory access, no stack use.
    unsafe {
        std::arch::asm!("/* {0} */", inout(xmm_reg) leaf, options(pure, nomem, nostack, preserves_flags));
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: as above.
    unsafe {
        std::arch::asm!("/* {0} */", inout(vreg) leaf, options(pure, nomem, nostack, preserves_flags));
    }
    leaf
}

/// One step from heap position `k`: `2k + 1` if `row[slot[k]] <= value[k]`, else `2k + 2`
/// (`row` points at the row's first value in the column-major block; slots are premultiplied
/// by `BLOCK_ROWS`).
///
/// # Safety
/// `k` must be a split entry of the tree at `values`/`slots`, whose slot is within the block.
#[inline(always)]
#[allow(
    clippy::neg_cmp_op_on_partial_ord,
    reason = "NaN must take the second child: `!(v <= t)` is the rule, not `v > t`"
)]
unsafe fn step(values: *const f64, slots: *const u32, row: *const f64, k: usize) -> usize {
    let (value, threshold) = unsafe { (*row.add(*slots.add(k) as usize), *values.add(k)) };
    2 * k + 1 + usize::from(!(value <= threshold))
}

impl TreeBuilder<'_> {
    /// Places fast node `node` at heap position `k` (depth `level`) and its subtree below.
    fn place(&mut self, node: u32, k: usize, level: u32) {
        let at = self.base + k;
        let split = self.fast.split(node);
        if level == self.forest.depth {
            assert!(split.is_none(), "a split below the model's depth");
            self.forest.values[at] = self.fast.leaf_value(node);
            return;
        }
        // A leaf above the last level: a dummy split whose subtrees both end in this leaf.
        let (slot, threshold, children) = match split {
            None => (0, 0.0, [node, node]),
            Some(split) => {
                let (slot, threshold) = self.slot_of(&split);
                (slot, threshold, split.children)
            }
        };
        self.forest.slots[at] = slot;
        self.forest.values[at] = threshold;
        self.place(children[0], 2 * k + 1, level + 1);
        self.place(children[1], 2 * k + 2, level + 1);
    }

    /// The row slot a split reads and the threshold it compares with.
    fn slot_of(&mut self, split: &Split) -> (u32, f64) {
        let width = self.forest.width as u32;
        let derived = &mut self.forest.derived;
        let feature = split.feature;
        match split.kind {
            SplitKind::Plain => (feature, split.threshold),
            SplitKind::Mirrored => {
                let slot = *self
                    .negated
                    .entry(feature)
                    .or_insert_with(|| push(derived, width, Derived::Negated { feature }));
                (slot, split.threshold)
            }
            SplitKind::Category { offset } => (self.set_slot(feature, offset), SET_THRESHOLD),
        }
    }

    /// The slot of the (deduplicated) set at fast `words[offset..]` of a categorical feature.
    fn set_slot(&mut self, feature: u32, offset: u32) -> u32 {
        let width = self.forest.width as u32;
        let FeaturePlan::Category { words } = self.fast.plans[feature as usize] else {
            unreachable!("fast layout: categorical node on a non-categorical feature");
        };
        let set = self.fast.words[offset as usize..][..=words as usize].to_vec();
        let (derived, words_out) = (&mut self.forest.derived, &mut self.forest.words);
        *self
            .sets
            .entry((feature, set))
            .or_insert_with_key(|(feature, set)| {
                let offset = words_out.len() as u32;
                words_out.extend_from_slice(set);
                push(
                    derived,
                    width,
                    Derived::InSet {
                        feature: *feature,
                        offset,
                    },
                )
            })
    }
}
/// Appends a derived slot and returns its row slot.
fn push(derived: &mut Vec<Derived>, width: u32, rule: Derived) -> u32 {
    derived.push(rule);
    width + derived.len() as u32 - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encoded positions of the test feature: 2 words per set plus the padding word.
    const POSITIONS: usize = 96;

    /// A tree-less forest over one categorical feature (2-word sets) with `sets` random sets
    /// and a negated slot, its derived slots grouped with at most `table_entries_max` entries.
    fn forest_with_sets(sets: usize, table_entries_max: usize) -> PerfectForest {
        let mut forest = PerfectForest {
            depth: 0,
            stride: 1,
            trees: 0,
            values: Vec::new(),
            slots: Vec::new(),
            width: 1,
            derived: vec![Derived::Negated { feature: 0 }],
            words: vec![0],
            fill: DerivedFill::default(),
        };
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        for _ in 0..sets {
            let offset = forest.words.len() as u32;
            for _ in 0..2 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                forest.words.push(state as u32);
            }
            forest.words.push(0);
            forest.derived.push(Derived::InSet { feature: 0, offset });
        }
        let plans = [FeaturePlan::Category { words: 2 }];
        forest.fill = forest.plan_fill(&plans, table_entries_max);
        forest
    }

    /// Fills blocks of `rows` rows whose positions run through every position, and checks
    /// every derived slot of every row against the set's own bits.
    fn check_fill(forest: &PerfectForest, rows: usize) {
        let mut block = vec![f64::NAN; BLOCK_ROWS * forest.row_stride()];
        for first in (0..POSITIONS).step_by(rows) {
            let positions: Vec<usize> = (first..first + rows).map(|p| p % POSITIONS).collect();
            for (r, &position) in positions.iter().enumerate() {
                let encoded = [f64::from_bits(position as u64)];
                forest.store_features(&encoded, &mut block, r);
            }
            forest.fill_derived(&mut block, rows);
            for (r, &position) in positions.iter().enumerate() {
                let slot = |s: usize| block[s * BLOCK_ROWS + r].to_bits();
                assert_eq!(slot(1), (-f64::from_bits(position as u64)).to_bits());
                for (s, rule) in forest.derived.iter().enumerate().skip(1) {
                    let Derived::InSet { offset, .. } = *rule else {
                        unreachable!("one negated slot, first");
                    };
                    let expected: f64 = if forest.contains(offset, position) {
                        0.0
                    } else {
                        2.0
                    };
                    assert_eq!(
                        slot(1 + s),
                        expected.to_bits(),
                        "rows {rows} row {r} set {s}"
                    );
                }
            }
        }
    }

    #[test]
    fn set_tables_and_probes_fill_the_sets_bits() {
        for sets in [1, 63, 64, 65, 130] {
            let tables = forest_with_sets(sets, TABLE_ENTRIES_MAX);
            assert_eq!((tables.fill.tables.len(), tables.fill.probes.len()), (1, 0));
            assert_eq!(tables.fill.tables[0].chunks, sets.div_ceil(64));
            let probes = forest_with_sets(sets, 0);
            assert_eq!(
                (probes.fill.tables.len(), probes.fill.probes.len()),
                (0, sets)
            );
            for rows in [1, FILL_ROWS - 1, FILL_ROWS + 3, BLOCK_ROWS] {
                check_fill(&tables, rows);
                check_fill(&probes, rows);
            }
        }
    }
}
