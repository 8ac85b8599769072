//! Simulated users: loads the adgen population CSV (or synthesizes a Zipf one) and
//! samples users proportionally to their `activity` weight with the alias method.
//! Knows nothing of HTTP or of the OpenRTB request layout.

use std::path::{Path, PathBuf};

use rand::Rng;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand_distr::Distribution;
use rand_distr::weighted::WeightedAliasIndex;

/// Columns of the adgen population file, in the order adgen writes them.
pub const COLUMNS: [&str; 12] = [
    "user_id",
    "country",
    "region",
    "devicetype",
    "os",
    "make",
    "model",
    "ip",
    "ua",
    "lat",
    "lon",
    "activity",
];

/// Upper bound on the number of users read from a file.
pub const USERS_MAX: usize = 50_000_000;
/// Upper bound on the size of a population file, in bytes.
pub const FILE_BYTES_MAX: u64 = 4 << 30;
/// Upper bound on one CSV line, in bytes.
pub const LINE_BYTES_MAX: usize = 64 * 1024;

/// Why a population could not be loaded or built.
#[derive(Debug, thiserror::Error)]
pub enum PopulationError {
    #[error("cannot read users file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("users file {path}: header lacks column {column:?} (need {COLUMNS:?})")]
    MissingColumn { path: PathBuf, column: &'static str },
    #[error("users file {path}, line {line}, column {column:?}: {reason}")]
    BadField {
        path: PathBuf,
        line: usize,
        column: String,
        reason: String,
    },
    #[error("users file {path}, line {line}: {reason}")]
    BadLine {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("users file {path} is {size_bytes} bytes, more than the {FILE_BYTES_MAX} allowed")]
    TooLarge { path: PathBuf, size_bytes: u64 },
    #[error("users file {path} holds no users")]
    Empty { path: PathBuf },
    #[error("population has no positive activity weight to sample from: {0}")]
    Weights(String),
}

/// One simulated user and the device they browse from.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub user_id: String,
    /// ISO-3166-1 alpha-3 as OpenRTB expects (passed through from the file).
    pub country: String,
    pub region: String,
    /// OpenRTB device type (1 mobile/tablet, 2 PC, 3 CTV, 4 phone, 5 tablet, ...).
    pub devicetype: u8,
    pub os: String,
    pub make: String,
    pub model: String,
    pub ip: String,
    pub ua: String,
    pub lat: f64,
    pub lon: f64,
    /// Relative request weight (> 0).
    pub activity: f64,
}

/// A set of users with an O(1) weighted sampler over their activity.
#[derive(Debug)]
pub struct Population {
    users: Vec<User>,
    sampler: WeightedAliasIndex<f64>,
}

impl Population {
    /// Builds a population from users; every activity must be finite and > 0.
    pub fn new(users: Vec<User>) -> Result<Population, PopulationError> {
        let weights: Vec<f64> = users.iter().map(|u| u.activity).collect();
        let sampler = WeightedAliasIndex::new(weights)
            .map_err(|e| PopulationError::Weights(e.to_string()))?;
        Ok(Population { users, sampler })
    }

    /// Reads an adgen population CSV (header required; columns found by name).
    pub fn from_csv(path: &Path) -> Result<Population, PopulationError> {
        let io_error = |source| PopulationError::Io {
            path: path.to_path_buf(),
            source,
        };
        let size = std::fs::metadata(path).map_err(io_error)?.len();
        if size > FILE_BYTES_MAX {
            return Err(PopulationError::TooLarge {
                path: path.to_path_buf(),
                size_bytes: size,
            });
        }
        let text = std::fs::read_to_string(path).map_err(|source| PopulationError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Population::new(parse_csv(path, &text)?)
    }

    /// Synthesizes `user_count` users with Zipf(α=1) activity (user of rank r weighs 1/r).
    pub fn synthesize(user_count: usize, seed: u64) -> Result<Population, PopulationError> {
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x05ee_d0f0_5e75);
        let users = (0..user_count)
            .map(|rank| synthetic_user(rank, &mut rng))
            .collect();
        Population::new(users)
    }

    /// Draws a user with probability proportional to its activity.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> &User {
        &self.users[self.sampler.sample(rng)]
    }

    /// Index of a user drawn proportionally to activity (for tests and statistics).
    pub fn sample_index<R: Rng + ?Sized>(&self, rng: &mut R) -> usize {
        self.sampler.sample(rng)
    }

    pub fn users(&self) -> &[User] {
        &self.users
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// Parses the CSV text of a population file; `path` only names the file in errors.
pub fn parse_csv(path: &Path, text: &str) -> Result<Vec<User>, PopulationError> {
    let mut lines = text.lines().enumerate();
    let (_, header) = lines.next().ok_or_else(|| PopulationError::Empty {
        path: path.to_path_buf(),
    })?;
    let header_fields = split_csv_line(header).map_err(|reason| PopulationError::BadLine {
        path: path.to_path_buf(),
        line: 1,
        reason,
    })?;
    let positions = column_positions(path, &header_fields)?;
    let mut users = Vec::new();
    for (index, line) in lines {
        let line_no = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        if users.len() >= USERS_MAX {
            return Err(PopulationError::BadLine {
                path: path.to_path_buf(),
                line: line_no,
                reason: format!("more than {USERS_MAX} users"),
            });
        }
        users.push(parse_user_line(path, line_no, line, &positions)?);
    }
    if users.is_empty() {
        return Err(PopulationError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(users)
}

fn column_positions(path: &Path, header: &[String]) -> Result<[usize; 12], PopulationError> {
    let mut positions = [0usize; 12];
    for (slot, column) in positions.iter_mut().zip(COLUMNS) {
        *slot = header
            .iter()
            .position(|h| h.trim().trim_start_matches('\u{feff}') == column)
            .ok_or_else(|| PopulationError::MissingColumn {
                path: path.to_path_buf(),
                column,
            })?;
    }
    Ok(positions)
}

fn parse_user_line(
    path: &Path,
    line_no: usize,
    line: &str,
    positions: &[usize; 12],
) -> Result<User, PopulationError> {
    let bad_line = |reason: String| PopulationError::BadLine {
        path: path.to_path_buf(),
        line: line_no,
        reason,
    };
    if line.len() > LINE_BYTES_MAX {
        return Err(bad_line(format!("longer than {LINE_BYTES_MAX} bytes")));
    }
    let fields = split_csv_line(line).map_err(bad_line)?;
    let field = |i: usize| -> Result<&str, PopulationError> {
        fields
            .get(positions[i])
            .map(|s| s.as_str())
            .ok_or_else(|| bad_field(path, line_no, i, "missing field".to_string()))
    };
    let number = |i: usize| -> Result<f64, PopulationError> {
        let text = field(i)?;
        let value: f64 = text
            .trim()
            .parse()
            .map_err(|_| bad_field(path, line_no, i, format!("{text:?} is not a number")))?;
        if value.is_finite() {
            Ok(value)
        } else {
            Err(bad_field(
                path,
                line_no,
                i,
                format!("{text:?} is not finite"),
            ))
        }
    };
    let devicetype_text = field(3)?;
    let devicetype: u8 = devicetype_text.trim().parse().map_err(|_| {
        bad_field(
            path,
            line_no,
            3,
            format!("{devicetype_text:?} is not an OpenRTB device type (0..=255)"),
        )
    })?;
    let user_id = field(0)?.to_string();
    if user_id.is_empty() {
        return Err(bad_field(path, line_no, 0, "empty user id".to_string()));
    }
    let (lat, lon, activity) = (number(9)?, number(10)?, number(11)?);
    if !(-90.0..=90.0).contains(&lat) {
        return Err(bad_field(
            path,
            line_no,
            9,
            format!("{lat} outside -90..=90"),
        ));
    }
    if !(-180.0..=180.0).contains(&lon) {
        return Err(bad_field(
            path,
            line_no,
            10,
            format!("{lon} outside -180..=180"),
        ));
    }
    if activity <= 0.0 {
        return Err(bad_field(
            path,
            line_no,
            11,
            format!("{activity} must be > 0"),
        ));
    }
    Ok(User {
        user_id,
        country: field(1)?.to_string(),
        region: field(2)?.to_string(),
        devicetype,
        os: field(4)?.to_string(),
        make: field(5)?.to_string(),
        model: field(6)?.to_string(),
        ip: field(7)?.to_string(),
        ua: field(8)?.to_string(),
        lat,
        lon,
        activity,
    })
}

fn bad_field(path: &Path, line: usize, column_index: usize, reason: String) -> PopulationError {
    PopulationError::BadField {
        path: path.to_path_buf(),
        line,
        column: COLUMNS[column_index].to_string(),
        reason,
    }
}

/// Splits one RFC 4180 line: fields may be quoted, `""` inside quotes is a quote.
/// Quoted fields spanning lines are not supported (a clear error, not a misparse).
pub fn split_csv_line(line: &str) -> Result<Vec<String>, String> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut fields = Vec::with_capacity(COLUMNS.len());
    let mut chars = line.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err("unterminated quoted field".to_string()),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(c) => return Err(format!("unexpected {c:?} after a closing quote")),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some('"') => return Err("quote inside an unquoted field".to_string()),
                    Some(c) => field.push(c),
                }
            }
            fields.push(field);
        }
    }
}

struct Region {
    country: &'static str,
    region: &'static str,
    lat: f64,
    lon: f64,
    ip_prefix: &'static str,
}

const REGIONS: [Region; 8] = [
    Region {
        country: "USA",
        region: "CA",
        lat: 37.77,
        lon: -122.42,
        ip_prefix: "73.170",
    },
    Region {
        country: "USA",
        region: "NY",
        lat: 40.71,
        lon: -74.01,
        ip_prefix: "68.198",
    },
    Region {
        country: "USA",
        region: "TX",
        lat: 30.27,
        lon: -97.74,
        ip_prefix: "24.155",
    },
    Region {
        country: "GBR",
        region: "ENG",
        lat: 51.51,
        lon: -0.13,
        ip_prefix: "81.152",
    },
    Region {
        country: "DEU",
        region: "BE",
        lat: 52.52,
        lon: 13.40,
        ip_prefix: "91.64",
    },
    Region {
        country: "FRA",
        region: "IDF",
        lat: 48.86,
        lon: 2.35,
        ip_prefix: "90.84",
    },
    Region {
        country: "BRA",
        region: "SP",
        lat: -23.55,
        lon: -46.63,
        ip_prefix: "177.32",
    },
    Region {
        country: "JPN",
        region: "13",
        lat: 35.68,
        lon: 139.69,
        ip_prefix: "126.21",
    },
];

struct Device {
    devicetype: u8,
    os: &'static str,
    make: &'static str,
    model: &'static str,
    ua: &'static str,
}

const DEVICES: [Device; 5] = [
    Device {
        devicetype: 4,
        os: "iOS",
        make: "Apple",
        model: "iPhone",
        ua: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    },
    Device {
        devicetype: 4,
        os: "Android",
        make: "Samsung",
        model: "SM-S918B",
        ua: "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
    },
    Device {
        devicetype: 2,
        os: "Windows",
        make: "Microsoft",
        model: "PC",
        ua: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    },
    Device {
        devicetype: 2,
        os: "macOS",
        make: "Apple",
        model: "Macintosh",
        ua: "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    },
    Device {
        devicetype: 5,
        os: "iPadOS",
        make: "Apple",
        model: "iPad",
        ua: "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    },
];

fn synthetic_user(rank: usize, rng: &mut SmallRng) -> User {
    let region = &REGIONS[rng.random_range(0..REGIONS.len())];
    let device = &DEVICES[rng.random_range(0..DEVICES.len())];
    User {
        user_id: format!("u{rank:09}"),
        country: region.country.to_string(),
        region: region.region.to_string(),
        devicetype: device.devicetype,
        os: device.os.to_string(),
        make: device.make.to_string(),
        model: device.model.to_string(),
        ip: format!(
            "{}.{}.{}",
            region.ip_prefix,
            rng.random_range(0..=255u8),
            rng.random_range(1..=254u8)
        ),
        ua: device.ua.to_string(),
        lat: round2(region.lat + rng.random_range(-0.5..0.5)),
        lon: round2(region.lon + rng.random_range(-0.5..0.5)),
        activity: 1.0 / (rank as f64 + 1.0),
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "user_id,country,region,devicetype,os,make,model,ip,ua,lat,lon,activity";

    fn parse(text: &str) -> Result<Vec<User>, PopulationError> {
        parse_csv(Path::new("users.csv"), text)
    }

    #[test]
    fn splits_quoted_fields_with_commas_and_quotes() {
        let f = split_csv_line(r#"a,"b, c","say ""hi""",,"#).unwrap();
        assert_eq!(f, vec!["a", "b, c", r#"say "hi""#, "", ""]);
        assert!(split_csv_line(r#"a,"open"#).is_err());
        assert!(split_csv_line(r#"a,"x"y"#).is_err());
    }

    #[test]
    fn reads_rows_by_header_name() {
        let text = format!(
            "{HEADER}\nu1,USA,CA,4,iOS,Apple,iPhone,1.2.3.4,\"Mozilla/5.0 (KHTML, like Gecko)\",37.7,-122.4,2.5\n"
        );
        let users = parse(&text).unwrap();
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].ua, "Mozilla/5.0 (KHTML, like Gecko)");
        assert_eq!(users[0].devicetype, 4);
        assert_eq!(users[0].activity, 2.5);
    }

    #[test]
    fn bad_number_names_line_and_column() {
        let text = format!(
            "{HEADER}\nu1,USA,CA,4,iOS,Apple,iPhone,1.2.3.4,ua,37.7,-122.4,1\nu2,USA,CA,4,iOS,Apple,iPhone,1.2.3.4,ua,north,-122.4,1\n"
        );
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("\"lat\""), "{err}");
        assert!(err.contains("users.csv"), "{err}");
    }

    #[test]
    fn rejects_missing_column_nonpositive_activity_and_empty() {
        let err = parse("user_id,country\nu1,USA\n").unwrap_err().to_string();
        assert!(err.contains("region"), "{err}");
        let text = format!("{HEADER}\nu1,USA,CA,4,iOS,Apple,iPhone,1.2.3.4,ua,37.7,-122.4,0\n");
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("activity"), "{err}");
        assert!(matches!(parse(HEADER), Err(PopulationError::Empty { .. })));
        assert!(matches!(parse(""), Err(PopulationError::Empty { .. })));
        let short = format!("{HEADER}\nu1,USA,CA\n");
        assert!(matches!(
            parse(&short),
            Err(PopulationError::BadField { line: 2, .. })
        ));
    }

    #[test]
    fn synthesized_population_is_zipf_and_deterministic() {
        let a = Population::synthesize(1000, 7).unwrap();
        let b = Population::synthesize(1000, 7).unwrap();
        assert_eq!(a.users(), b.users());
        assert_eq!(a.users()[0].activity, 1.0);
        assert_eq!(a.users()[9].activity, 0.1);
        let mut rng = SmallRng::seed_from_u64(3);
        let top = (0..10_000)
            .filter(|_| a.sample_index(&mut rng) == 0)
            .count();
        // H(1000) ~ 7.485, so rank 1 draws ~13.4 % of the time.
        assert!((1000..1700).contains(&top), "rank-1 draws {top}");
    }
}
