//! The flat, cache-friendly layout the scorer walks, and the batch scorer itself.
//!
//! Three kernels, tried in order: `perfect.rs` (padded heap-ordered trees; most models),
//! `fast.rs` (this layout with per-row input encoding, when every feature is used one
//! consistent way), and the general walk below. This file owns the layout of the last two,
//! block loading (normalisation) and the choice.
//!
//! Layout: all trees' nodes in one `Vec<Node>` (32 bytes each, two per cache line), every tree stored in
//! breadth-first order so the top levels share cache lines. A leaf is a node whose two
//! children are itself, so walking a tree is exactly `depth` branch-free steps
//! (`cursor = node.children[!goes_left]`) with no "is this a leaf?" test; a row that reaches a
//! leaf early just stays there. Categorical bitsets live in one shared `Vec<u32>`.
//!
//! Scoring interleaves independent walks ("lanes") to hide load latency: a block of up to
//! `BLOCK_ROWS` rows is copied (normalised, in f64) into the caller's `Scratch`, then trees
//! are taken in groups so that rows x trees-in-group is about `LANES_TARGET` lanes; each step
//! advances every lane once. Leaf values are then added in tree order, so the sum is
//! bit-identical to a plain tree-by-tree loop.

use crate::error::LoadError;
use crate::fast::FastForest;
use crate::lightgbm::ZERO_THRESHOLD;
use crate::perfect::PerfectForest;
use crate::spec::{Accumulate, InputRule, ModelSpec, SpecNode, Test};

/// Rows copied into the scratch block per pass. The perfect kernel reads every tree once per
/// block: 32 rows measured ~8 % faster than 16 at batch 100 on the Intel VM (64: no faster,
/// and small batches slower); see `perfect.rs`.
pub const BLOCK_ROWS: usize = 32;
/// Independent walks in flight per step.
const LANES_TARGET: usize = 16;
/// Deepest tree accepted; every row takes `depth` steps in every tree.
pub const TREE_DEPTH_MAX: usize = 1024;
/// Largest model accepted, in nodes (u32 node indices).
const NODES_MAX: usize = u32::MAX as usize / 2;

const CATEGORY: u32 = 1;
const SPECIAL_LEFT: u32 = 2;
const ZERO_MISSING: u32 = 4;

#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub(crate) struct Node {
    /// Numeric split: go left if `v <= value`. Leaf: the leaf value.
    value: f64,
    feature: u32,
    flags: u32,
    /// `[left, right]`, global node indices; a leaf points at itself twice.
    children: [u32; 2],
    /// Categorical split: its bitset is `category_words[category_offset..][..category_words]`.
    /// Other nodes: (0, 0), so the branch-free category probe reads word 0 and ignores it.
    category_offset: u32,
    category_len: u32,
}

#[derive(Debug, Clone, Copy)]
struct TreeEntry {
    root: u32,
    depth: u32,
}

/// An input value type the scorer accepts (row-major slices of `f32` or `f64`).
pub trait FeatureValue: Copy {
    fn to_f64(self) -> f64;
}

impl FeatureValue for f64 {
    #[inline]
    fn to_f64(self) -> f64 {
        self
    }
}

impl FeatureValue for f32 {
    #[inline]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
}

/// Reusable buffers for scoring, owned by the caller (one per shard/thread). It grows on the
/// first call for a model and is reused after: scoring then allocates nothing.
#[derive(Debug, Default)]
pub struct Scratch {
    features: Vec<f64>,
    cursors: Vec<u32>,
    sums: Vec<f64>,
    /// One row being encoded for the perfect kernel.
    row: Vec<f64>,
}

impl Scratch {
    /// An empty scratch; buffers are sized on first use.
    pub fn new() -> Self {
        Self::default()
    }

    fn fit(&mut self, width: usize, row_stride: usize) {
        if self.row.len() < width {
            self.row.resize(width, 0.0);
        }
        let features = BLOCK_ROWS * row_stride;
        if self.features.len() < features {
            self.features.resize(features, 0.0);
        }
        let lanes = LANES_TARGET.max(BLOCK_ROWS);
        if self.cursors.len() < lanes {
            self.cursors.resize(lanes, 0);
        }
        if self.sums.len() < BLOCK_ROWS {
            self.sums.resize(BLOCK_ROWS, 0.0);
        }
    }
}

/// The compiled forest.
#[derive(Debug, Clone)]
pub(crate) struct Forest {
    nodes: Vec<Node>,
    trees: Vec<TreeEntry>,
    category_words: Vec<u32>,
    /// Any categorical split: selects the scorer that evaluates both kinds branch-free.
    has_categorical: bool,
    /// The fast kernel, when every feature is used consistently (see `fast.rs`).
    fast: Option<FastForest>,
    /// The padded-tree kernel built from `fast` when padding is cheap (see `perfect.rs`);
    /// it scores instead of `fast` when present.
    perfect: Option<PerfectForest>,
    /// Features each row must provide (at least 1, so a leaf's dummy read is in range).
    width: usize,
    input_rule: InputRule,
    accumulate: Accumulate,
    base_margin: f64,
    average_divisor: f64,
}

impl Forest {
    pub(crate) fn compile(file: &str, spec: &ModelSpec) -> Result<Self, LoadError> {
        let mut forest = Forest {
            nodes: Vec::new(),
            trees: Vec::with_capacity(spec.trees.len()),
            // Word 0 is the dummy every non-categorical node probes.
            category_words: vec![0],
            has_categorical: false,
            fast: None,
            perfect: None,
            width: spec.feature_names.len().max(1),
            input_rule: spec.input_rule,
            accumulate: spec.accumulate,
            base_margin: spec.base_margin,
            average_divisor: spec.average_divisor,
        };
        let mut layouts = Vec::with_capacity(spec.trees.len());
        for (index, tree) in spec.trees.iter().enumerate() {
            layouts.push(forest.add_tree(file, index, &tree.nodes)?);
        }
        forest.check_invariants();
        forest.fast = FastForest::build(&spec.trees, forest.width, &layouts);
        if let Some(fast) = &forest.fast {
            fast.check_invariants(forest.width);
            let roots: Vec<u32> = forest.trees.iter().map(|t| t.root).collect();
            let depth = forest.depth_max() as u32;
            let nodes = forest.nodes.len();
            forest.perfect = PerfectForest::build(fast, forest.width, &roots, depth, nodes);
        }
        Ok(forest)
    }

    /// The facts the unchecked loads in `step` rely on. Compilation guarantees them; a
    /// violation is a bug in this crate, so it stops here rather than read out of bounds.
    fn check_invariants(&self) {
        let count = self.nodes.len();
        assert!(!self.category_words.is_empty());
        for tree in &self.trees {
            assert!((tree.root as usize) < count);
        }
        for node in &self.nodes {
            assert!(node.children.iter().all(|&c| (c as usize) < count));
            assert!((node.feature as usize) < self.width);
            let end = node.category_offset as u64 + u64::from(node.category_len);
            assert!(end <= self.category_words.len() as u64);
        }
    }

    /// Appends one tree in breadth-first order, checking it is a proper tree. Returns its
    /// layout: (root index, spec index of each stored node, stored position of each spec node).
    fn add_tree(
        &mut self,
        file: &str,
        index: usize,
        nodes: &[SpecNode],
    ) -> Result<(u32, Vec<usize>, Vec<usize>), LoadError> {
        let malformed = |message: String| LoadError::Malformed {
            file: file.to_string(),
            location: format!("tree {index}"),
            message,
        };
        if nodes.is_empty() {
            return Err(malformed("the tree has no nodes".to_string()));
        }
        if self.nodes.len() + nodes.len() > NODES_MAX {
            return Err(malformed(format!("the model exceeds {NODES_MAX} nodes")));
        }
        let base = self.nodes.len();
        // Breadth-first: order[k] = spec index of the k-th emitted node.
        let mut position = vec![usize::MAX; nodes.len()];
        let mut order = Vec::with_capacity(nodes.len());
        let mut levels = vec![0usize; nodes.len()];
        let mut depth = 0;
        position[0] = 0;
        order.push(0);
        let mut next = 0;
        while next < order.len() {
            let spec_index = order[next];
            next += 1;
            if let SpecNode::Split { left, right, .. } = nodes[spec_index] {
                for child in [left, right] {
                    if child >= nodes.len() || position[child] != usize::MAX {
                        return Err(malformed(format!(
                            "node {child} is out of range or reached twice (not a tree)"
                        )));
                    }
                    position[child] = order.len();
                    levels[child] = levels[spec_index] + 1;
                    depth = depth.max(levels[child]);
                    order.push(child);
                }
            }
        }
        if order.len() != nodes.len() {
            return Err(malformed(format!(
                "{} of {} nodes are unreachable from the root",
                nodes.len() - order.len(),
                nodes.len()
            )));
        }
        if depth > TREE_DEPTH_MAX {
            return Err(malformed(format!("depth {depth} exceeds {TREE_DEPTH_MAX}")));
        }
        for (k, &spec_index) in order.iter().enumerate() {
            let node = self.compile_node(base, k, &nodes[spec_index], &position);
            self.nodes.push(node);
        }
        self.trees.push(TreeEntry {
            root: base as u32,
            depth: depth as u32,
        });
        Ok((base as u32, order, position))
    }

    fn compile_node(&mut self, base: usize, k: usize, node: &SpecNode, position: &[usize]) -> Node {
        match node {
            SpecNode::Leaf { value } => {
                let me = (base + k) as u32;
                Node {
                    value: *value,
                    feature: 0,
                    flags: 0,
                    children: [me, me],
                    category_offset: 0,
                    category_len: 0,
                }
            }
            SpecNode::Split {
                feature,
                test,
                left,
                right,
            } => {
                let children = [
                    (base + position[*left]) as u32,
                    (base + position[*right]) as u32,
                ];
                match test {
                    Test::Numeric(numeric) => Node {
                        value: numeric.threshold,
                        feature: *feature,
                        flags: (u32::from(numeric.special_left) * SPECIAL_LEFT)
                            | (u32::from(numeric.zero_is_missing) * ZERO_MISSING),
                        children,
                        category_offset: 0,
                        category_len: 0,
                    },
                    Test::Category(category) => {
                        let offset = self.category_words.len();
                        self.category_words.extend_from_slice(&category.bitset);
                        self.has_categorical = true;
                        Node {
                            value: f64::NAN,
                            feature: *feature,
                            flags: CATEGORY,
                            children,
                            category_offset: offset as u32,
                            category_len: category.bitset.len() as u32,
                        }
                    }
                }
            }
        }
    }

    pub(crate) fn tree_count(&self) -> usize {
        self.trees.len()
    }

    pub(crate) fn depth_max(&self) -> usize {
        self.trees
            .iter()
            .map(|t| t.depth as usize)
            .max()
            .unwrap_or(0)
    }

    pub(crate) fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Raw scores of `out.len()` rows; shapes were checked by the caller.
    pub(crate) fn score_raw<T: FeatureValue>(
        &self,
        rows: &[T],
        n_features: usize,
        scratch: &mut Scratch,
        out: &mut [f64],
    ) {
        scratch.fit(self.width, self.row_stride());
        let block_values = BLOCK_ROWS * n_features;
        for (block, block_out) in rows.chunks(block_values).zip(out.chunks_mut(BLOCK_ROWS)) {
            self.load_block(block, n_features, block_out.len(), scratch);
            self.score_block(scratch, block_out);
        }
    }

    /// Values per row in the scratch block: the features, plus the perfect kernel's slots.
    fn row_stride(&self) -> usize {
        self.perfect
            .as_ref()
            .map_or(self.width, PerfectForest::row_stride)
    }

    /// Copies `count` rows into `scratch.features`, normalised as the source library sees
    /// them and encoded for the kernel that scores them: row-major (stride `width`) for the
    /// fast and general kernels, the perfect kernel's column-major block otherwise (features
    /// row by row, then its derived slots column by column).
    fn load_block<T: FeatureValue>(
        &self,
        block: &[T],
        n_features: usize,
        count: usize,
        scratch: &mut Scratch,
    ) {
        let width = self.width;
        for r in 0..count {
            let source = &block[r * n_features..(r + 1) * n_features];
            match &self.perfect {
                Some(perfect) => {
                    let row = &mut scratch.row[..width];
                    self.load_row(source, row);
                    perfect.store_features(row, &mut scratch.features, r);
                }
                None => self.load_row(source, &mut scratch.features[r * width..(r + 1) * width]),
            }
        }
        if let Some(perfect) = &self.perfect {
            perfect.fill_derived(&mut scratch.features, count);
        }
    }

    /// Normalises one row into `target` (`width` values) and applies the fast encoding.
    fn load_row<T: FeatureValue>(&self, source: &[T], target: &mut [f64]) {
        let used = self.width.min(source.len());
        match self.input_rule {
            InputRule::LightGbm => {
                for (t, s) in target[..used].iter_mut().zip(source) {
                    let v = s.to_f64();
                    *t = if v.abs() <= ZERO_THRESHOLD { 0.0 } else { v };
                }
            }
            InputRule::XgBoost => {
                for (t, s) in target[..used].iter_mut().zip(source) {
                    *t = f64::from(s.to_f64() as f32);
                }
            }
        }
        // Only a feature-less model (width 1, n_features 0) reaches here with a gap.
        target[used..].fill(0.0);
        if let Some(fast) = &self.fast {
            fast.encode_row(target);
        }
    }

    fn score_block(&self, scratch: &mut Scratch, out: &mut [f64]) {
        let rows = out.len();
        let features = &scratch.features[..BLOCK_ROWS * self.row_stride()];
        let sums = &mut scratch.sums[..rows];
        sums.fill(self.base_margin);
        if let Some(perfect) = &self.perfect {
            perfect.add_block(features, sums, self.accumulate);
        } else {
            let group = (LANES_TARGET / rows).max(1);
            for trees in self.trees.chunks(group) {
                let lanes = &mut scratch.cursors[..trees.len() * rows];
                self.walk_group(trees, features, rows, lanes);
                self.add_leaves(lanes, sums);
            }
        }
        for (o, s) in out.iter_mut().zip(sums.iter()) {
            *o = if self.average_divisor == 1.0 {
                *s
            } else {
                *s / self.average_divisor
            };
        }
    }

    /// Walks every (tree, row) lane of a tree group to its leaf.
    fn walk_group(&self, trees: &[TreeEntry], features: &[f64], rows: usize, lanes: &mut [u32]) {
        if let Some(fast) = &self.fast {
            if fast.has_categorical {
                self.walk_fast::<true>(fast, trees, features, rows, lanes);
            } else {
                self.walk_fast::<false>(fast, trees, features, rows, lanes);
            }
        } else if self.has_categorical {
            self.walk_group_of::<true>(trees, features, rows, lanes);
        } else {
            self.walk_group_of::<false>(trees, features, rows, lanes);
        }
    }

    fn walk_fast<const CATEGORICAL: bool>(
        &self,
        fast: &FastForest,
        trees: &[TreeEntry],
        features: &[f64],
        rows: usize,
        lanes: &mut [u32],
    ) {
        let depth = trees.iter().map(|t| t.depth).max().unwrap_or(0);
        for (tree, tree_lanes) in trees.iter().zip(lanes.chunks_mut(rows)) {
            tree_lanes.fill(tree.root);
        }
        let width = self.width;
        assert!(
            features.len() >= rows * width,
            "scratch block smaller than its rows"
        );
        if rows.is_multiple_of(REGISTER_LANES) {
            // Full blocks: 8 rows of one tree at a time, cursors in registers.
            for (tree, tree_lanes) in trees.iter().zip(lanes.chunks_mut(rows)) {
                for (chunk, cursors) in tree_lanes.chunks_exact_mut(REGISTER_LANES).enumerate() {
                    let starts = std::array::from_fn(|j| (chunk * REGISTER_LANES + j) * width);
                    walk_registers::<CATEGORICAL>(fast, cursors, starts, tree.depth, features);
                }
            }
            return;
        }
        if rows == 1 {
            // One row: 8 trees at a time.
            for (group, cursors) in trees
                .chunks(REGISTER_LANES)
                .zip(lanes.chunks_mut(REGISTER_LANES))
            {
                if let Ok(cursors) = <&mut [u32; REGISTER_LANES]>::try_from(&mut *cursors) {
                    let depth = group.iter().map(|t| t.depth).max().unwrap_or(0);
                    walk_registers::<CATEGORICAL>(
                        fast,
                        cursors,
                        [0; REGISTER_LANES],
                        depth,
                        features,
                    );
                    continue;
                }
                for (tree, cursor) in group.iter().zip(cursors.iter_mut()) {
                    for _ in 0..tree.depth {
                        *cursor = fast.step::<CATEGORICAL>(*cursor, features, 0);
                    }
                }
            }
            return;
        }
        for _ in 0..depth {
            for tree_lanes in lanes.chunks_mut(rows) {
                for (r, cursor) in tree_lanes.iter_mut().enumerate() {
                    *cursor = fast.step::<CATEGORICAL>(*cursor, features, r * width);
                }
            }
        }
    }

    /// Which kernel scores this model: `"perfect"`, `"fast"` or `"general"`.
    pub(crate) fn kernel(&self) -> &'static str {
        if self.perfect.is_some() {
            "perfect"
        } else if self.fast.is_some() {
            "fast"
        } else {
            "general"
        }
    }

    fn walk_group_of<const CATEGORICAL: bool>(
        &self,
        trees: &[TreeEntry],
        features: &[f64],
        rows: usize,
        lanes: &mut [u32],
    ) {
        let depth = trees.iter().map(|t| t.depth).max().unwrap_or(0);
        for (tree, tree_lanes) in trees.iter().zip(lanes.chunks_mut(rows)) {
            tree_lanes.fill(tree.root);
        }
        let width = self.width;
        assert!(
            features.len() >= rows * width,
            "scratch block smaller than its rows"
        );
        for _ in 0..depth {
            for tree_lanes in lanes.chunks_mut(rows) {
                for (r, cursor) in tree_lanes.iter_mut().enumerate() {
                    *cursor = self.step::<CATEGORICAL>(*cursor, features, r * width);
                }
            }
        }
    }

    /// Adds each lane's leaf value to its row's sum, tree by tree (tree order preserved).
    fn add_leaves(&self, lanes: &[u32], sums: &mut [f64]) {
        let rows = sums.len();
        for tree_lanes in lanes.chunks(rows) {
            for (sum, &cursor) in sums.iter_mut().zip(tree_lanes) {
                let leaf = self.nodes[cursor as usize].value;
                *sum = match self.accumulate {
                    Accumulate::F64 => *sum + leaf,
                    Accumulate::F32 => f64::from(*sum as f32 + leaf as f32),
                };
            }
        }
    }

    /// One branch-free step: the child of node `at` that the row starting at
    /// `features[row_start]` goes to.
    #[inline(always)]
    fn step<const CATEGORICAL: bool>(&self, at: u32, features: &[f64], row_start: usize) -> u32 {
        debug_assert!((at as usize) < self.nodes.len());
        // SAFETY: `at` is a root or a child index, all < nodes.len() (`check_invariants`).
        let node = unsafe { self.nodes.get_unchecked(at as usize) };
        let at_feature = row_start + node.feature as usize;
        debug_assert!(at_feature < features.len());
        // SAFETY: node.feature < width (`check_invariants`) and the caller asserted that
        // `features` holds every row of the block, so row_start + feature is in range.
        let v = unsafe { *features.get_unchecked(at_feature) };
        let mut left = numeric_goes_left(node, v);
        if CATEGORICAL {
            let is_category = node.flags & CATEGORY != 0;
            left = (is_category & self.category_goes_left(node, v)) | (!is_category & left);
        }
        node.children[usize::from(!left)]
    }

    /// LightGBM's categorical rule without branches: NaN or a negative truncated integer goes
    /// right, else the category's bit decides. Out-of-range values saturate, land outside the
    /// bitset (or below zero) and go right, as in LightGBM. Non-categorical nodes have an
    /// empty range and probe the dummy word 0.
    #[inline(always)]
    fn category_goes_left(&self, node: &Node, v: f64) -> bool {
        let category = v as i32;
        let word = (category as u32) >> 5;
        let valid = !v.is_nan() & (category >= 0) & (word < node.category_len);
        let index = if valid {
            node.category_offset + word
        } else {
            0
        };
        debug_assert!((index as usize) < self.category_words.len());
        // SAFETY: word 0 exists, and a valid probe is inside the node's range, which
        // `check_invariants` proved lies within category_words.
        let bits = unsafe { *self.category_words.get_unchecked(index as usize) };
        valid & ((bits >> (category as u32 & 31)) & 1 == 1)
    }
}

/// Independent walks kept in registers by `walk_registers`.
const REGISTER_LANES: usize = 8;

/// Advances 8 cursors `depth` steps; lane j reads the row at `features[starts[j]..]`.
#[inline(always)]
fn walk_registers<const CATEGORICAL: bool>(
    fast: &FastForest,
    cursors: &mut [u32],
    starts: [usize; REGISTER_LANES],
    depth: u32,
    features: &[f64],
) {
    let mut local: [u32; REGISTER_LANES] = std::array::from_fn(|j| cursors[j]);
    for _ in 0..depth {
        for j in 0..REGISTER_LANES {
            local[j] = fast.step::<CATEGORICAL>(local[j], features, starts[j]);
        }
    }
    cursors[..REGISTER_LANES].copy_from_slice(&local);
}

#[inline(always)]
fn numeric_goes_left(node: &Node, v: f64) -> bool {
    let zero_missing = node.flags & ZERO_MISSING != 0;
    let special = v.is_nan() | (zero_missing & (v == 0.0));
    let special_left = node.flags & SPECIAL_LEFT != 0;
    (special & special_left) | (!special & (v <= node.value))
}
