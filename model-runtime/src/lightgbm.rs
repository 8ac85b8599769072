//! LightGBM text model (`Booster.save_model`, versions v3 and v4) to a `ModelSpec`.
//!
//! Semantics follow LightGBM's `Tree::NumericalDecision` / `CategoricalDecision`:
//! `decision_type` bit 0 = categorical, bit 1 = default left, bits 2-3 = missing type
//! (0 None, 1 Zero, 2 NaN). A NaN reaching a split whose missing type is not NaN is read as
//! 0.0; categorical splits send NaN and negative values right and look the truncated integer
//! up in the node's bitset (`cat_boundaries` / `cat_threshold`).

use std::collections::HashMap;

use crate::error::LoadError;
use crate::spec::{
    Accumulate, CategoryTest, InputRule, ModelSpec, NumericTest, Objective, SpecNode, Test,
    TreeSpec,
};

/// LightGBM's `kZeroThreshold` (a float constant, 1e-35f).
pub(crate) const ZERO_THRESHOLD: f64 = 1e-35_f32 as f64;

const CATEGORICAL_BIT: u32 = 1;
const DEFAULT_LEFT_BIT: u32 = 2;
const MISSING_ZERO: u32 = 1;
const MISSING_NAN: u32 = 2;
/// Bound on leaves per tree; LightGBM's own `num_leaves` limit is 131072.
const LEAVES_PER_TREE_MAX: usize = 131_072;

/// `key=value` lines of one section, with the line number of each key.
struct Section<'a> {
    file: &'a str,
    name: String,
    start_line: usize,
    fields: HashMap<&'a str, (usize, &'a str)>,
}

impl<'a> Section<'a> {
    fn malformed(&self, line: usize, message: impl Into<String>) -> LoadError {
        LoadError::Malformed {
            file: self.file.to_string(),
            location: format!("line {line} ({})", self.name),
            message: message.into(),
        }
    }

    fn get(&self, key: &str) -> Option<(usize, &'a str)> {
        self.fields.get(key).copied()
    }

    fn require(&self, key: &str) -> Result<(usize, &'a str), LoadError> {
        self.get(key)
            .ok_or_else(|| self.malformed(self.start_line, format!("missing key `{key}`")))
    }

    fn number<T: std::str::FromStr>(&self, key: &str) -> Result<T, LoadError> {
        let (line, value) = self.require(key)?;
        value
            .trim()
            .parse()
            .map_err(|_| self.malformed(line, format!("`{key}` is not a number: {value:?}")))
    }

    /// A space-separated list under `key` with exactly `len` entries.
    fn list<T: std::str::FromStr>(&self, key: &str, len: usize) -> Result<Vec<T>, LoadError> {
        let (line, value) = self.require(key)?;
        // `len` comes from the file: never reserve more than the line can hold.
        let mut items = Vec::with_capacity(len.min(value.len() / 2 + 1));
        for token in value.split_ascii_whitespace() {
            let item = token.parse().map_err(|_| {
                self.malformed(line, format!("`{key}` holds a bad number {token:?}"))
            })?;
            items.push(item);
        }
        if items.len() != len {
            return Err(self.malformed(
                line,
                format!("`{key}` has {} entries, expected {len}", items.len()),
            ));
        }
        Ok(items)
    }
}

/// Splits the text into the header section and one section per `Tree=` block.
fn sections<'a>(file: &'a str, text: &'a str) -> Result<Vec<Section<'a>>, LoadError> {
    let mut sections = vec![Section {
        file,
        name: "header".to_string(),
        start_line: 1,
        fields: HashMap::new(),
    }];
    let mut ended = false;
    for (index, raw_line) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw_line.trim_end_matches('\r');
        if line == "end of trees" {
            ended = true;
            break;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if key == "Tree" {
            sections.push(Section {
                file,
                name: format!("Tree={value}"),
                start_line: line_no,
                fields: HashMap::new(),
            });
            continue;
        }
        if let Some(current) = sections.last_mut() {
            current.fields.insert(key, (line_no, value));
        }
    }
    if !ended {
        return Err(LoadError::Malformed {
            file: file.to_string(),
            location: format!("line {}", text.lines().count()),
            message: "truncated: no `end of trees` line".to_string(),
        });
    }
    Ok(sections)
}

fn unsupported(file: &str, feature: impl Into<String>) -> LoadError {
    LoadError::Unsupported {
        file: file.to_string(),
        feature: feature.into(),
    }
}

fn parse_objective(header: &Section) -> Result<Objective, LoadError> {
    let (line, value) = header.require("objective")?;
    let mut words = value.split_ascii_whitespace();
    let name = words.next().unwrap_or("");
    let options: Vec<&str> = words.collect();
    let regression = [
        "regression",
        "regression_l2",
        "regression_l1",
        "huber",
        "fair",
        "quantile",
        "mape",
    ];
    if name == "binary" || name == "cross_entropy" || name == "xentropy" {
        let mut sigmoid = 1.0;
        for option in options {
            match option.split_once(':') {
                Some(("sigmoid", s)) => {
                    sigmoid = s.parse().map_err(|_| {
                        header.malformed(line, format!("bad sigmoid parameter {s:?}"))
                    })?;
                }
                _ => {
                    return Err(unsupported(
                        header.file,
                        format!("objective option {option}"),
                    ));
                }
            }
        }
        return Ok(Objective::LightGbmBinary { sigmoid });
    }
    if regression.contains(&name) {
        if let Some(option) = options.first() {
            return Err(unsupported(
                header.file,
                format!("objective={name} {option}"),
            ));
        }
        return Ok(Objective::LightGbmRegression);
    }
    Err(unsupported(header.file, format!("objective={value}")))
}

fn check_header(header: &Section) -> Result<(), LoadError> {
    let file = header.file;
    if let Some((_, version)) = header.get("version")
        && version != "v3"
        && version != "v4"
    {
        return Err(unsupported(file, format!("version={version}")));
    }
    let num_class: usize = header.number("num_class")?;
    if num_class != 1 {
        return Err(unsupported(
            file,
            format!("num_class={num_class} (multiclass)"),
        ));
    }
    let per_iteration: usize = header.number("num_tree_per_iteration")?;
    if per_iteration != 1 {
        return Err(unsupported(
            file,
            format!("num_tree_per_iteration={per_iteration}"),
        ));
    }
    if let Some((_, value)) = header.get("linear_tree").filter(|(_, v)| v.trim() != "0") {
        return Err(unsupported(file, format!("linear_tree={value}")));
    }
    Ok(())
}

/// Parses LightGBM model text. `file` names the source in error messages.
pub(crate) fn parse(file: &str, text: &str) -> Result<ModelSpec, LoadError> {
    if !text.starts_with("tree") {
        return Err(LoadError::Malformed {
            file: file.to_string(),
            location: "line 1".to_string(),
            message: "a LightGBM model starts with `tree`".to_string(),
        });
    }
    let sections = sections(file, text)?;
    let (header, tree_sections) = sections
        .split_first()
        .ok_or_else(|| unsupported(file, "an empty model"))?;
    check_header(header)?;
    let objective = parse_objective(header)?;
    let max_feature_idx: usize = header.number("max_feature_idx")?;
    if max_feature_idx >= crate::FEATURES_MAX {
        return Err(unsupported(
            file,
            format!(
                "max_feature_idx={max_feature_idx} (more than {} features)",
                crate::FEATURES_MAX
            ),
        ));
    }
    let feature_count = max_feature_idx + 1;
    let feature_names = header.list::<String>("feature_names", feature_count)?;
    let mut trees = Vec::with_capacity(tree_sections.len());
    for section in tree_sections {
        trees.push(parse_tree(section, feature_count)?);
    }
    if trees.is_empty() {
        return Err(header.malformed(header.start_line, "the model has no trees"));
    }
    // Random-forest models (`average_output` flag line in the header) average their trees.
    let averaged = text
        .lines()
        .take_while(|line| !line.starts_with("Tree="))
        .any(|line| line.trim() == "average_output");
    Ok(ModelSpec {
        format: "lightgbm",
        feature_names,
        average_divisor: if averaged { trees.len() as f64 } else { 1.0 },
        trees,
        objective,
        input_rule: InputRule::LightGbm,
        accumulate: Accumulate::F64,
        base_margin: 0.0,
    })
}

fn parse_tree(section: &Section, feature_count: usize) -> Result<TreeSpec, LoadError> {
    if let Some((_, value)) = section.get("is_linear").filter(|(_, v)| v.trim() != "0") {
        return Err(unsupported(
            section.file,
            format!("{}: is_linear={value} (linear_tree)", section.name),
        ));
    }
    let num_leaves: usize = section.number("num_leaves")?;
    if num_leaves == 0 || num_leaves > LEAVES_PER_TREE_MAX {
        return Err(section.malformed(
            section.start_line,
            format!("num_leaves={num_leaves} is out of range 1..={LEAVES_PER_TREE_MAX}"),
        ));
    }
    let leaf_values: Vec<f64> = section.list("leaf_value", num_leaves)?;
    if num_leaves == 1 {
        return Ok(TreeSpec {
            nodes: vec![SpecNode::Leaf {
                value: leaf_values[0],
            }],
        });
    }
    let splits = num_leaves - 1;
    let features: Vec<usize> = section.list("split_feature", splits)?;
    let thresholds: Vec<f64> = section.list("threshold", splits)?;
    let decision_types: Vec<u32> = section.list("decision_type", splits)?;
    let left: Vec<i64> = section.list("left_child", splits)?;
    let right: Vec<i64> = section.list("right_child", splits)?;
    let categories = CategoryTable::parse(section)?;

    // Internal node i keeps index i; leaf j becomes node splits + j.
    let child_index = |raw: i64, line_key: &str| -> Result<usize, LoadError> {
        let index = if raw >= 0 {
            usize::try_from(raw).ok().filter(|&i| i < splits)
        } else {
            usize::try_from(!raw)
                .ok()
                .filter(|&leaf| leaf < num_leaves)
                .map(|leaf| splits + leaf)
        };
        index.ok_or_else(|| {
            let line = section.get(line_key).map_or(section.start_line, |(l, _)| l);
            section.malformed(line, format!("`{line_key}` entry {raw} is out of range"))
        })
    };
    let mut nodes = Vec::with_capacity(splits + num_leaves);
    for i in 0..splits {
        let feature = features[i];
        if feature >= feature_count {
            let line = section.require("split_feature")?.0;
            return Err(section.malformed(
                line,
                format!("split_feature {feature} >= max_feature_idx + 1 = {feature_count}"),
            ));
        }
        let test = decode_test(section, decision_types[i], thresholds[i], &categories)?;
        nodes.push(SpecNode::Split {
            feature: feature as u32,
            test,
            left: child_index(left[i], "left_child")?,
            right: child_index(right[i], "right_child")?,
        });
    }
    nodes.extend(
        leaf_values
            .into_iter()
            .map(|value| SpecNode::Leaf { value }),
    );
    Ok(TreeSpec { nodes })
}

fn decode_test(
    section: &Section,
    decision_type: u32,
    threshold: f64,
    categories: &CategoryTable,
) -> Result<Test, LoadError> {
    let missing_type = (decision_type >> 2) & 3;
    if missing_type == 3 || decision_type > 15 {
        let line = section.require("decision_type")?.0;
        return Err(section.malformed(line, format!("bad decision_type {decision_type}")));
    }
    if decision_type & CATEGORICAL_BIT != 0 {
        let bitset = categories.bitset(section, threshold)?;
        return Ok(Test::Category(CategoryTest { bitset }));
    }
    let default_left = decision_type & DEFAULT_LEFT_BIT != 0;
    let test = match missing_type {
        // NaN is read as 0.0 and compared.
        0 => NumericTest {
            threshold,
            special_left: 0.0 <= threshold,
            zero_is_missing: false,
        },
        // NaN is read as 0.0, which is "zero": the default direction.
        MISSING_ZERO => NumericTest {
            threshold,
            special_left: default_left,
            zero_is_missing: true,
        },
        MISSING_NAN => NumericTest {
            threshold,
            special_left: default_left,
            zero_is_missing: false,
        },
        _ => unreachable!("missing type was checked above"),
    };
    Ok(Test::Numeric(test))
}

/// `cat_boundaries` / `cat_threshold` of one tree.
struct CategoryTable {
    boundaries: Vec<usize>,
    words: Vec<u32>,
}

impl CategoryTable {
    fn parse(section: &Section) -> Result<Self, LoadError> {
        let num_cat: usize = match section.get("num_cat") {
            Some(_) => section.number("num_cat")?,
            None => 0,
        };
        if num_cat > LEAVES_PER_TREE_MAX {
            return Err(section.malformed(
                section.start_line,
                format!("num_cat={num_cat} is too large"),
            ));
        }
        if num_cat == 0 {
            return Ok(Self {
                boundaries: vec![0],
                words: Vec::new(),
            });
        }
        let boundaries: Vec<usize> = section.list("cat_boundaries", num_cat + 1)?;
        let (line, raw_words) = section.require("cat_threshold")?;
        let word_count = raw_words.split_ascii_whitespace().count();
        let words: Vec<u32> = section.list("cat_threshold", word_count)?;
        let monotonic = boundaries.windows(2).all(|pair| pair[0] <= pair[1]);
        if boundaries[0] != 0 || !monotonic || boundaries[num_cat] != words.len() {
            return Err(section.malformed(
                line,
                "cat_boundaries do not partition cat_threshold".to_string(),
            ));
        }
        Ok(Self { boundaries, words })
    }

    /// The bitset named by a categorical split's threshold (an index into the table).
    fn bitset(&self, section: &Section, threshold: f64) -> Result<Vec<u32>, LoadError> {
        let count = self.boundaries.len() - 1;
        let index = threshold as usize;
        if threshold.fract() != 0.0 || threshold < 0.0 || index >= count {
            let line = section.require("threshold")?.0;
            return Err(section.malformed(
                line,
                format!("categorical threshold {threshold} is not a category set index < {count}"),
            ));
        }
        Ok(self.words[self.boundaries[index]..self.boundaries[index + 1]].to_vec())
    }
}
