//! User profiles: a shard-local store of the users the shard owns, with live counters, and the
//! cohort/segment aggregates the cold-start tiers fall back on.
//!
//! At start the users file (`adgen`'s `users.csv`) is parsed once; each shard keeps only the
//! users it owns (`owner_shard(user_key_of_id(user_id))`), at most `profiles.users_max_per_shard`
//! of them (users past the bound are not loaded, and counted). Users absent from the file are
//! not added while serving: they have no data, so they are scored by the category prior (tier
//! 4) and nothing is stored for them. Known users count impressions (when we win) and clicks
//! (`/notice/click`) live, per category. Cohort and segment aggregates are computed from the
//! whole file (identical on every shard) and stay fixed until restart.
//!
//! Owns: the users file format, profiles, live user counters, aggregates, and the resolution of
//! a profile into [`UserFeatures`] for a basis (personal, cohort, segment). Must not know: the
//! model, tiers' thresholds, exploration or the auction.

use std::collections::HashMap;
use std::path::Path;

use crate::features::{
    CATEGORIES, COUNTRIES, N_CAT, UserFeatures, code_of, log_count, smoothed_ctr,
};
use crate::intake::{owner_shard, user_key_of_id};

/// Pseudo-impressions with which click rates are shrunk towards their parent rate.
pub const CTR_SMOOTHING_IMPS: f64 = 20.0;
/// Longest line accepted in a users file.
pub const LINE_BYTES_MAX: usize = 8192;

/// Columns the users file must have (found by header name; others are ignored).
pub const COLUMNS: [&str; 8] = [
    "user_id",
    "country",
    "devicetype",
    "age_bucket",
    "gender",
    "interests",
    "cohort",
    "cat_history",
];

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: line 1: header lacks column {column:?}")]
    MissingColumn { file: String, column: &'static str },
    #[error("{file}: line {line}: {message}")]
    Line {
        file: String,
        line: usize,
        message: String,
    },
}

/// One user as the engine knows them. Counts include the file's history and live events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UserProfile {
    /// 1..=6 (18-24 .. 65+), 0 unknown.
    pub age_bucket: u8,
    /// 1 male, 2 female, 3 other, 0 unknown.
    pub gender: u8,
    /// Bit `k` set: interested in `CATEGORIES[k]`.
    pub interests: u16,
    pub cohort: u32,
    /// Coarse segment: country code x device type.
    pub segment: u32,
    pub cat_imps: [u32; N_CAT],
    pub cat_clicks: [u32; N_CAT],
    /// Impressions and clicks over every category (history + live).
    pub imps: u64,
    pub clicks: u64,
    /// Events seen since start (part of the totals above).
    pub live_imps: u64,
    pub live_clicks: u64,
}

/// Summed history of a group of users.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Agg {
    pub users: u64,
    pub imps: u64,
    pub clicks: u64,
    pub cat_imps: [u64; N_CAT],
    pub cat_clicks: [u64; N_CAT],
    /// Users interested in each category.
    pub interested: [u64; N_CAT],
    pub interest_total: u64,
}

impl Agg {
    fn add(&mut self, p: &UserProfile) {
        self.users += 1;
        self.imps += p.imps;
        self.clicks += p.clicks;
        for k in 0..N_CAT {
            self.cat_imps[k] += u64::from(p.cat_imps[k]);
            self.cat_clicks[k] += u64::from(p.cat_clicks[k]);
            let on = u64::from(p.interests >> k & 1);
            self.interested[k] += on;
            self.interest_total += on;
        }
    }
}

/// Cohort and segment aggregates over the whole users file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Aggregates {
    pub global: Agg,
    pub cohorts: HashMap<u32, Agg>,
    pub segments: HashMap<u32, Agg>,
}

/// Which numbers stand for the user's own (seed Part 4 tiers 1-3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// The user's own history and demographics (tier 1).
    Personal,
    /// The user's cohort averages, with the user's demographics (tier 2).
    Cohort,
    /// The coarse segment's averages (country x device), no demographics (tier 3).
    Segment,
}

impl Aggregates {
    fn global_ctr(&self) -> f64 {
        smoothed_ctr(
            self.global.clicks as f64,
            self.global.imps as f64,
            0.02,
            100.0,
        )
    }

    fn global_cat_ctr(&self, k: usize) -> f64 {
        let g = &self.global;
        smoothed_ctr(
            g.cat_clicks[k] as f64,
            g.cat_imps[k] as f64,
            self.global_ctr(),
            100.0,
        )
    }

    /// The user-side features of `p` on the given basis. Allocation-free.
    pub fn user_features(&self, p: &UserProfile, basis: Basis) -> UserFeatures {
        match basis {
            Basis::Personal => self.personal(p),
            Basis::Cohort => {
                let mut f = self.group(self.cohorts.get(&p.cohort));
                f.age_bucket = demographic(p.age_bucket);
                f.gender = demographic(p.gender);
                f
            }
            Basis::Segment => self.group(self.segments.get(&p.segment)),
        }
    }

    fn personal(&self, p: &UserProfile) -> UserFeatures {
        let mut f = UserFeatures::MISSING;
        f.age_bucket = demographic(p.age_bucket);
        f.gender = demographic(p.gender);
        f.interest_count = f64::from(p.interests.count_ones());
        f.imps_log = log_count(p.imps as f64);
        f.ctr = smoothed_ctr(
            p.clicks as f64,
            p.imps as f64,
            self.global_ctr(),
            CTR_SMOOTHING_IMPS,
        );
        for k in 0..N_CAT {
            f.cat_affinity[k] = f64::from(p.interests >> k & 1);
            f.cat_ctr[k] = smoothed_ctr(
                f64::from(p.cat_clicks[k]),
                f64::from(p.cat_imps[k]),
                self.global_cat_ctr(k),
                CTR_SMOOTHING_IMPS,
            );
            f.cat_imps_log[k] = log_count(f64::from(p.cat_imps[k]));
        }
        f
    }

    /// Averages of a group (per user), or the global ones when the group is unknown.
    fn group(&self, g: Option<&Agg>) -> UserFeatures {
        let g = g.filter(|g| g.users > 0).unwrap_or(&self.global);
        let users = g.users.max(1) as f64;
        let mut f = UserFeatures::MISSING;
        f.interest_count = g.interest_total as f64 / users;
        f.imps_log = log_count(g.imps as f64 / users);
        f.ctr = smoothed_ctr(
            g.clicks as f64,
            g.imps as f64,
            self.global_ctr(),
            CTR_SMOOTHING_IMPS,
        );
        for k in 0..N_CAT {
            f.cat_affinity[k] = g.interested[k] as f64 / users;
            f.cat_ctr[k] = smoothed_ctr(
                g.cat_clicks[k] as f64,
                g.cat_imps[k] as f64,
                self.global_cat_ctr(k),
                CTR_SMOOTHING_IMPS,
            );
            f.cat_imps_log[k] = log_count(g.cat_imps[k] as f64 / users);
        }
        f
    }
}

fn demographic(code: u8) -> f64 {
    if code == 0 { f64::NAN } else { f64::from(code) }
}

/// The segment of a user: country code x device type (0..=7).
pub fn segment_of(country: &str, device_type: u8) -> u32 {
    code_of(&COUNTRIES, country) as u32 * 8 + u32::from(device_type.min(7))
}

/// A parsed users file: every user with their key, and the aggregates over all of them.
#[derive(Debug, Clone, Default)]
pub struct UsersFile {
    pub users: Vec<(u64, UserProfile)>,
    pub aggregates: Aggregates,
}

/// Reads a users file; `Ok(None)` when it does not exist (the engine then has no profiles).
pub fn load_users(path: &Path) -> Result<Option<UsersFile>, ProfileError> {
    if path.as_os_str().is_empty() {
        return Ok(None);
    }
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse_users(&file, &text).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ProfileError::Io { file, source }),
    }
}

/// Parses users CSV text (header required, columns by name); `file` names the source in errors.
pub fn parse_users(file: &str, text: &str) -> Result<UsersFile, ProfileError> {
    let mut lines = text.lines().enumerate();
    let header = lines.next().map(|(_, l)| l).unwrap_or("");
    let header = split_csv_line(header).map_err(|message| ProfileError::Line {
        file: file.to_string(),
        line: 1,
        message,
    })?;
    let mut pos = [0usize; COLUMNS.len()];
    for (slot, column) in pos.iter_mut().zip(COLUMNS) {
        *slot = header
            .iter()
            .position(|h| h.trim().trim_start_matches('\u{feff}') == column)
            .ok_or(ProfileError::MissingColumn {
                file: file.to_string(),
                column,
            })?;
    }
    let mut out = UsersFile::default();
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |message: String| ProfileError::Line {
            file: file.to_string(),
            line: i + 1,
            message,
        };
        if line.len() > LINE_BYTES_MAX {
            return Err(bad(format!("longer than {LINE_BYTES_MAX} bytes")));
        }
        let fields = split_csv_line(line).map_err(bad)?;
        let (id, p) = parse_user(&fields, &pos).map_err(bad)?;
        out.aggregates.global.add(&p);
        out.aggregates.cohorts.entry(p.cohort).or_default().add(&p);
        out.aggregates
            .segments
            .entry(p.segment)
            .or_default()
            .add(&p);
        out.users.push((user_key_of_id(&id), p));
    }
    Ok(out)
}

fn parse_user(
    fields: &[String],
    pos: &[usize; COLUMNS.len()],
) -> Result<(String, UserProfile), String> {
    let field = |i: usize| -> Result<&str, String> {
        fields
            .get(pos[i])
            .map(|s| s.trim())
            .ok_or_else(|| format!("missing field {}", COLUMNS[i]))
    };
    let num = |i: usize, max: u64| -> Result<u64, String> {
        let t = field(i)?;
        match t.parse::<u64>() {
            Ok(v) if v <= max => Ok(v),
            _ => Err(format!(
                "{}: {t:?} is not an integer in 0..={max}",
                COLUMNS[i]
            )),
        }
    };
    let id = field(0)?;
    if id.is_empty() {
        return Err("user_id: empty".into());
    }
    let device_type = num(2, 255)? as u8;
    let mut p = UserProfile {
        age_bucket: num(3, 6)? as u8,
        gender: match field(4)? {
            "" => 0,
            "M" => 1,
            "F" => 2,
            "O" => 3,
            g => return Err(format!("gender: {g:?} is not M, F, O or empty")),
        },
        cohort: num(6, u64::from(u32::MAX))? as u32,
        segment: segment_of(field(1)?, device_type),
        ..UserProfile::default()
    };
    for name in field(5)?.split(';').filter(|s| !s.is_empty()) {
        let k = crate::features::category_index(name)
            .ok_or_else(|| format!("interests: unknown category {name:?}"))?;
        p.interests |= 1 << k;
    }
    parse_history(field(7)?, &mut p)?;
    Ok((id.to_string(), p))
}

/// `cat_history`: one `imps:clicks` per category of [`CATEGORIES`], separated by `;`.
fn parse_history(text: &str, p: &mut UserProfile) -> Result<(), String> {
    let parts: Vec<&str> = text.split(';').collect();
    if parts.len() != N_CAT {
        return Err(format!(
            "cat_history: {} entries, expected {N_CAT} ({})",
            parts.len(),
            CATEGORIES.join(";")
        ));
    }
    for (k, part) in parts.iter().enumerate() {
        let parsed = part
            .split_once(':')
            .and_then(|(i, c)| Some((i.parse::<u32>().ok()?, c.parse::<u32>().ok()?)));
        match parsed {
            Some((imps, clicks)) if clicks <= imps => {
                p.cat_imps[k] = imps;
                p.cat_clicks[k] = clicks;
                p.imps += u64::from(imps);
                p.clicks += u64::from(clicks);
            }
            _ => {
                return Err(format!(
                    "cat_history entry {k} ({}): {part:?} is not imps:clicks with clicks <= imps",
                    CATEGORIES[k]
                ));
            }
        }
    }
    Ok(())
}

/// Splits one CSV line (RFC 4180 quotes; no embedded newlines).
pub fn split_csv_line(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(ch) = chars.next() {
        match (quoted, ch) {
            (false, '"') if at_start => quoted = true,
            (false, '"') => return Err("quote inside an unquoted field".into()),
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            (true, '"') => {
                quoted = false;
                if !matches!(chars.peek(), None | Some(',')) {
                    return Err("text after a closing quote".into());
                }
            }
            (false, ',') => {
                out.push(std::mem::take(&mut cur));
                at_start = true;
                continue;
            }
            (_, c) => cur.push(c),
        }
        at_start = false;
    }
    if quoted {
        return Err("unterminated quoted field".into());
    }
    out.push(cur);
    Ok(out)
}

/// The users one shard owns, with live counters.
#[derive(Debug)]
pub struct ProfileStore {
    users: HashMap<u64, UserProfile, ahash::RandomState>,
    /// Users of this shard not loaded because the store was full.
    pub dropped_at_load: u64,
}

impl ProfileStore {
    /// The shard's share of `file`, at most `users_max` users (the first ones in file order).
    pub fn for_shard(
        file: Option<&UsersFile>,
        shard: usize,
        shards: usize,
        users_max: usize,
    ) -> ProfileStore {
        let mut store = ProfileStore {
            users: HashMap::with_hasher(ahash::RandomState::with_seeds(1, 2, 3, 4)),
            dropped_at_load: 0,
        };
        for (key, p) in file.map(|f| f.users.as_slice()).unwrap_or(&[]) {
            if owner_shard(*key, shards) != shard {
                continue;
            }
            if store.users.len() >= users_max {
                store.dropped_at_load += 1;
                continue;
            }
            store.users.insert(*key, *p);
        }
        store
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    pub fn get(&self, key: u64) -> Option<&UserProfile> {
        self.users.get(&key)
    }

    /// Counts an impression served to a known user; false if the user is unknown.
    pub fn record_impression(&mut self, key: u64, category: Option<usize>) -> bool {
        let Some(p) = self.users.get_mut(&key) else {
            return false;
        };
        p.imps += 1;
        p.live_imps += 1;
        if let Some(k) = category {
            p.cat_imps[k] = p.cat_imps[k].saturating_add(1);
        }
        true
    }

    /// Counts a click by a known user; false if the user is unknown.
    pub fn record_click(&mut self, key: u64, category: Option<usize>) -> bool {
        let Some(p) = self.users.get_mut(&key) else {
            return false;
        };
        p.clicks += 1;
        p.live_clicks += 1;
        if let Some(k) = category {
            p.cat_clicks[k] = p.cat_clicks[k].saturating_add(1);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str =
        "user_id,country,region,devicetype,os,ua,age_bucket,gender,interests,cohort,cat_history";

    fn history(imps: u32, clicks: u32) -> String {
        (0..N_CAT)
            .map(|k| {
                if k == 1 {
                    format!("{imps}:{clicks}")
                } else {
                    "0:0".into()
                }
            })
            .collect::<Vec<_>>()
            .join(";")
    }

    fn file(n: usize) -> String {
        let mut s = format!("{HEADER}\n");
        for i in 0..n {
            s += &format!(
                "u{i},USA,CA,4,iOS,\"Mozilla/5.0 (X, Y)\",2,F,gaming;food,{},{}\n",
                i % 3,
                history(i as u32 * 10, i as u32)
            );
        }
        s
    }

    #[test]
    fn parses_users_and_aggregates() {
        let f = parse_users("users.csv", &file(4)).unwrap();
        assert_eq!(f.users.len(), 4);
        let (key, p) = f.users[3];
        assert_eq!(key, user_key_of_id("u3"));
        assert_eq!((p.age_bucket, p.gender, p.cohort), (2, 2, 0));
        assert_eq!(p.interests, 1 << 1 | 1 << 8);
        assert_eq!((p.imps, p.clicks, p.cat_imps[1]), (30, 3, 30));
        assert_eq!(p.segment, segment_of("USA", 4));
        let a = &f.aggregates;
        assert_eq!(a.global.users, 4);
        assert_eq!(a.global.imps, 60);
        assert_eq!(a.cohorts[&0].users, 2);
        assert_eq!(a.segments[&segment_of("USA", 4)].users, 4);
    }

    #[test]
    fn bad_lines_name_file_line_and_field() {
        let text = format!("{HEADER}\nu1,USA,CA,4,iOS,ua,9,F,,1,{}\n", history(1, 0));
        let e = parse_users("users.csv", &text).unwrap_err().to_string();
        assert_eq!(
            e,
            "users.csv: line 2: age_bucket: \"9\" is not an integer in 0..=6"
        );
        let text = format!("{HEADER}\nu1,USA,CA,4,iOS,ua,1,F,,1,{}\n", history(1, 2));
        let e = parse_users("users.csv", &text).unwrap_err().to_string();
        assert!(
            e.starts_with("users.csv: line 2: cat_history entry 1 (gaming)"),
            "{e}"
        );
        let e = parse_users("u.csv", "user_id,country\n")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "u.csv: line 1: header lacks column \"devicetype\"");
        let text = format!(
            "{HEADER}\nu1,USA,CA,4,iOS,ua,1,F,cars,1,{}\n",
            history(1, 0)
        );
        let e = parse_users("users.csv", &text).unwrap_err().to_string();
        assert!(e.contains("unknown category \"cars\""), "{e}");
    }

    #[test]
    fn shards_keep_only_their_users_up_to_the_bound() {
        let f = parse_users("users.csv", &file(200)).unwrap();
        let a = ProfileStore::for_shard(Some(&f), 0, 2, usize::MAX);
        let b = ProfileStore::for_shard(Some(&f), 1, 2, usize::MAX);
        assert_eq!(a.len() + b.len(), 200);
        assert!(a.len() > 50 && b.len() > 50);
        for (key, _) in &f.users {
            assert_eq!(a.get(*key).is_some(), owner_shard(*key, 2) == 0);
        }
        let small = ProfileStore::for_shard(Some(&f), 0, 2, 10);
        assert_eq!(small.len(), 10);
        assert_eq!(small.dropped_at_load, a.len() as u64 - 10);
    }

    #[test]
    fn live_counters_move_the_profile() {
        let f = parse_users("users.csv", &file(2)).unwrap();
        let mut s = ProfileStore::for_shard(Some(&f), 0, 1, 10);
        let key = user_key_of_id("u1");
        assert!(s.record_impression(key, Some(1)));
        assert!(s.record_click(key, Some(1)));
        assert!(!s.record_click(user_key_of_id("nobody"), Some(1)));
        let p = s.get(key).unwrap();
        assert_eq!(
            (p.imps, p.clicks, p.live_imps, p.live_clicks),
            (11, 2, 1, 1)
        );
        assert_eq!((p.cat_imps[1], p.cat_clicks[1]), (11, 2));
    }

    #[test]
    fn bases_replace_user_numbers() {
        let f = parse_users("users.csv", &file(4)).unwrap();
        let p = f.users[3].1;
        let a = &f.aggregates;
        let personal = a.user_features(&p, Basis::Personal);
        assert_eq!(personal.age_bucket, 2.0);
        assert_eq!(personal.cat_affinity[1], 1.0);
        assert!((personal.cat_ctr[1] - 0.1).abs() < 0.05);
        let cohort = a.user_features(&p, Basis::Cohort);
        assert_eq!(cohort.age_bucket, 2.0);
        assert_eq!(
            cohort.imps_log,
            16f64.ln(),
            "cohort 0 averages users 0 and 3"
        );
        assert_eq!(personal.imps_log, 31f64.ln());
        let segment = a.user_features(&p, Basis::Segment);
        assert!(segment.age_bucket.is_nan() && segment.gender.is_nan());
        assert_eq!(segment.cat_affinity[8], 1.0);
    }

    #[test]
    fn csv_quotes() {
        let f = split_csv_line(r#"a,"b, c","say ""hi""",,"#).unwrap();
        assert_eq!(f, vec!["a", "b, c", "say \"hi\"", "", ""]);
        assert!(split_csv_line(r#"a,"open"#).is_err());
    }
}
