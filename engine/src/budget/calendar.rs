//! Budget periods: the advertiser's local day, in its IANA time zone, and the dead zone around
//! local midnight during which no chunk is granted (seed Part 7: clock skew at day boundaries).
//!
//! Pure: every answer is a function of the zone rules (bundled tzdb, so every machine agrees) and
//! the time passed in. Nothing here reads a clock.

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::catalog::days_from_civil;

/// One local day of one campaign: `[start_ms, end_ms)` in Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    /// Days since 1970-01-01 of the local date.
    pub day: i64,
    pub start_ms: i64,
    pub end_ms: i64,
}

impl Period {
    /// Whether `now_ms` lies within `dead_zone_ms` of either end of the period.
    pub fn in_dead_zone(&self, now_ms: i64, dead_zone_ms: i64) -> bool {
        now_ms < self.start_ms + dead_zone_ms || now_ms >= self.end_ms - dead_zone_ms
    }
}

/// Time zones per campaign (indexed like `Catalog::campaigns`).
#[derive(Debug, Clone)]
pub struct Calendar {
    zones: Vec<TimeZone>,
}

#[derive(Debug, thiserror::Error)]
#[error("unknown time zone {zone:?} (advertiser of campaign {campaign})")]
pub struct UnknownZone {
    pub zone: String,
    pub campaign: u32,
}

impl Calendar {
    /// One IANA zone name per campaign.
    pub fn from_names<'a>(
        names: impl IntoIterator<Item = (u32, &'a str)>,
    ) -> Result<Calendar, UnknownZone> {
        let zones = names
            .into_iter()
            .map(|(campaign, name)| {
                TimeZone::get(name).map_err(|_| UnknownZone {
                    zone: name.to_string(),
                    campaign,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Calendar { zones })
    }

    /// Fixed UTC offsets in seconds (the simulation and tests).
    pub fn fixed(offsets_s: &[i32]) -> Calendar {
        let zones = offsets_s
            .iter()
            .map(|&s| {
                let off = jiff::tz::Offset::from_seconds(s).expect("offset within +-25:59:59");
                TimeZone::fixed(off)
            })
            .collect();
        Calendar { zones }
    }

    pub fn len(&self) -> usize {
        self.zones.len()
    }

    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
    }

    /// The local day of `campaign` containing `now_ms`.
    pub fn period(&self, campaign: usize, now_ms: i64) -> Period {
        let ts = Timestamp::from_millisecond(now_ms).unwrap_or(Timestamp::UNIX_EPOCH);
        let z = ts.to_zoned(self.zones[campaign].clone());
        let d = z.date();
        let day = days_from_civil(i64::from(d.year()), d.month() as u32, d.day() as u32);
        let start = z.start_of_day().map(|s| s.timestamp().as_millisecond());
        let end = z
            .tomorrow()
            .and_then(|t| t.start_of_day())
            .map(|s| s.timestamp().as_millisecond());
        match (start, end) {
            (Ok(start_ms), Ok(end_ms)) => Period {
                day,
                start_ms,
                end_ms,
            },
            // Only at the far edges of jiff's range: fall back to UTC days.
            _ => {
                let day = now_ms.div_euclid(86_400_000);
                Period {
                    day,
                    start_ms: day * 86_400_000,
                    end_ms: (day + 1) * 86_400_000,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_day_follows_the_zone_and_dst() {
        let cal = Calendar::from_names([(1, "America/New_York"), (2, "UTC")]).unwrap();
        // 2026-11-28 03:00 UTC is still 2026-11-27 in New York (UTC-5).
        let now = days_from_civil(2026, 11, 28) * 86_400_000 + 3 * 3_600_000;
        let ny = cal.period(0, now);
        assert_eq!(ny.day, days_from_civil(2026, 11, 27));
        assert_eq!(
            ny.end_ms,
            days_from_civil(2026, 11, 28) * 86_400_000 + 5 * 3_600_000
        );
        assert_eq!(cal.period(1, now).day, days_from_civil(2026, 11, 28));
        // The spring-forward day in New York (2026-03-08) has 23 hours.
        let spring = days_from_civil(2026, 3, 8) * 86_400_000 + 12 * 3_600_000;
        let p = cal.period(0, spring);
        assert_eq!(p.end_ms - p.start_ms, 23 * 3_600_000);
    }

    #[test]
    fn dead_zone_covers_both_ends() {
        let cal = Calendar::fixed(&[3600]);
        let p = cal.period(0, 10 * 86_400_000);
        assert!(p.in_dead_zone(p.start_ms, 1000));
        assert!(p.in_dead_zone(p.end_ms - 1, 1000));
        assert!(!p.in_dead_zone(p.start_ms + 1000, 1000));
        assert!(!p.in_dead_zone(p.end_ms - 1001, 1000));
        assert!(Calendar::from_names([(7, "Mars/Olympus")]).is_err());
    }
}
