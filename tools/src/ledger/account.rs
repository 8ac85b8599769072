//! Where the money went, rebuilt from the records of every WAL file (allocator and spend logs
//! together, in any order: every figure is a sum, so file order does not matter).
//!
//! A *lot* is what one shard held of one campaign-day under one epoch (the allocator's
//! `(campaign, shard, day)` lot; a restart or fence gives the shard a new epoch and the old lot is
//! reclaimed). Per lot:
//!
//! ```text
//! granted     = Σ Grant (chunk + slack)
//! returned    = Σ Return (chunk + slack)          unspent budget given back
//! reported    = Σ Return.spent of closing returns  what the shard said it spent
//! reclaimed   = Σ Reclaim (chunk + slack)          counted as spent without a report (crash)
//! outstanding = granted - returned - reported - reclaimed   (still held by a live shard)
//! consumed    = granted - returned                 what the budget source counts as used
//! spent       = Σ Spend.cost                       committed spend records of the lot
//! unrecorded  = consumed - spent                   money counted as used with no spend record:
//!               the part of reclaimed/outstanding lots that was never charged, or charged
//!               in memory and lost in a crash before its record was durable
//! ```
//!
//! A lot whose committed spend exceeds what it consumed spent money it was never granted: an
//! error. Every idempotency key must appear in at most one Spend record: a second one is a
//! double charge, an error.

use std::collections::{BTreeMap, HashMap};

use engine::budget::allocator::AllocatorState;
use engine::budget::durable::{decode_allocator_snapshot, decode_spend_snapshot};
use engine::budget::record::{LedgerRecord, RecordError, ShardNo};
use engine::budget::subledger::SpendImage;

use super::read::{LedgerFile, SnapshotInfo};

/// Shard number of the figures a snapshot carries per campaign-day (not one shard's lot).
pub const SNAPSHOT_SHARD: ShardNo = ShardNo::MAX;
/// Day of spend a spend snapshot only knows as "lifetime before its current day".
pub const EARLIER_DAY: i64 = i64::MIN;

/// Money figures of a lot or of a campaign-day, micros.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Figures {
    pub granted: u64,
    pub returned: u64,
    pub reported: u64,
    pub reclaimed: u64,
    pub spent: u64,
    pub impressions: u64,
}

impl Figures {
    pub fn consumed(&self) -> u64 {
        self.granted.saturating_sub(self.returned)
    }

    pub fn outstanding(&self) -> u64 {
        self.granted
            .saturating_sub(self.returned + self.reported + self.reclaimed)
    }

    /// Consumed money not covered by spend records (see the module docs).
    pub fn unrecorded(&self) -> u64 {
        self.consumed().saturating_sub(self.spent)
    }

    pub fn add(&mut self, o: &Figures) {
        self.granted += o.granted;
        self.returned += o.returned;
        self.reported += o.reported;
        self.reclaimed += o.reclaimed;
        self.spent += o.spent;
        self.impressions += o.impressions;
    }
}

/// `(campaign, day, shard, epoch)`: campaign-day first so a day's lots are one range.
pub type LotKey = (u32, i64, ShardNo, u32);

/// One committed Spend record, by idempotency key (`from_snapshot`: only the key survived a
/// compaction; campaign, day and cost are unknown, 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendAt {
    pub from_snapshot: bool,
    pub campaign: u32,
    pub day: i64,
    pub shard: ShardNo,
    pub epoch: u32,
    pub cost: u64,
    pub file: String,
    pub seq: u64,
}

/// Everything the records say, summed.
#[derive(Debug, Clone, Default)]
pub struct Accounts {
    pub lots: BTreeMap<LotKey, Figures>,
    pub spends: HashMap<u64, SpendAt>,
    /// Errors found while summing (double charges, spend beyond a lot).
    pub problems: Vec<String>,
    /// Files compacted into a snapshot: figures before the snapshot are not in the records.
    pub snapshots: Vec<String>,
    pub records: u64,
}

impl Accounts {
    pub fn from_files(files: &[LedgerFile]) -> Accounts {
        let mut a = Accounts::default();
        for f in files {
            if let Some(snap) = &f.snapshot {
                a.snapshots.push(f.name());
                if let Err(e) = a.seed(&f.name(), snap) {
                    a.problems.push(format!(
                        "{}: snapshot seq {} at byte offset {} does not decode: {e}",
                        f.name(),
                        snap.seq,
                        snap.offset
                    ));
                }
            }
            for e in &f.entries {
                a.apply(&f.name(), e.seq, &e.record);
            }
        }
        a.check_lots();
        a
    }

    fn apply(&mut self, file: &str, seq: u64, r: &LedgerRecord) {
        self.records += 1;
        match *r {
            LedgerRecord::Grant {
                shard,
                epoch,
                campaign,
                day,
                chunk,
                slack,
            } => self.lot(campaign, day, shard, epoch).granted += chunk + slack,
            LedgerRecord::Return {
                shard,
                epoch,
                campaign,
                day,
                chunk,
                slack,
                spent,
            } => {
                let lot = self.lot(campaign, day, shard, epoch);
                lot.returned += chunk + slack;
                // A return closes the lot when what remains equals what the shard spent.
                if lot
                    .granted
                    .saturating_sub(lot.returned + lot.reported + lot.reclaimed)
                    == spent
                {
                    lot.reported += spent;
                }
            }
            LedgerRecord::Reclaim {
                shard,
                epoch,
                campaign,
                day,
                chunk,
                slack,
            } => self.lot(campaign, day, shard, epoch).reclaimed += chunk + slack,
            LedgerRecord::Spend {
                shard,
                epoch,
                campaign,
                day,
                key,
                cost,
            } => self.spend(file, seq, shard, epoch, campaign, day, key, cost),
            LedgerRecord::Register { .. } | LedgerRecord::PeriodRoll { .. } => {}
        }
    }

    /// Starts from a compaction snapshot (the engine's `budget::durable` encodings).
    fn seed(&mut self, file: &str, snap: &SnapshotInfo) -> Result<(), RecordError> {
        match decode_allocator_snapshot(&snap.payload) {
            Ok((state, _counters)) => {
                self.seed_allocator(&state);
                Ok(())
            }
            Err(RecordError::UnknownTag(_)) => {
                let img = decode_spend_snapshot(&snap.payload)?;
                self.seed_spend(file, snap.seq, &img);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Outstanding lots stay lots (later returns and reclaims find them); each campaign-day's
    /// closed money goes to a [`SNAPSHOT_SHARD`] lot.
    fn seed_allocator(&mut self, st: &AllocatorState) {
        for (&(c, s, d), lot) in &st.lots {
            self.lot(c, d, s, lot.epoch).granted += lot.total();
        }
        for (&(c, d), a) in &st.accts {
            let out = st.outstanding(c, d);
            let base = self.lot(c, d, SNAPSHOT_SHARD, 0);
            base.granted += a.granted.saturating_sub(out);
            base.returned += a.returned;
            base.reported += a.spent;
            base.reclaimed += a.reclaimed;
        }
    }

    /// Spend of the snapshot's current day per campaign, the rest of its lifetime spend as
    /// [`EARLIER_DAY`], and its idempotency keys (costs unknown).
    fn seed_spend(&mut self, file: &str, seq: u64, img: &SpendImage) {
        for (c, l) in img.lines.iter().enumerate() {
            let c = c as u32;
            if l.spent_day > 0 {
                self.lot(c, l.day, SNAPSHOT_SHARD, 0).spent += l.spent_day;
            }
            let earlier = self.lot(c, EARLIER_DAY, SNAPSHOT_SHARD, 0);
            earlier.spent += l.spent_life.saturating_sub(l.spent_day);
            earlier.impressions += l.impressions;
        }
        for &key in &img.keys {
            self.spends.entry(key).or_insert(SpendAt {
                from_snapshot: true,
                campaign: 0,
                day: EARLIER_DAY,
                shard: SNAPSHOT_SHARD,
                epoch: 0,
                cost: 0,
                file: file.to_string(),
                seq,
            });
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn spend(
        &mut self,
        file: &str,
        seq: u64,
        shard: ShardNo,
        epoch: u32,
        campaign: u32,
        day: i64,
        key: u64,
        cost: u64,
    ) {
        let lot = self.lot(campaign, day, shard, epoch);
        lot.spent += cost;
        lot.impressions += 1;
        let at = SpendAt {
            from_snapshot: false,
            campaign,
            day,
            shard,
            epoch,
            cost,
            file: file.to_string(),
            seq,
        };
        if let Some(first) = self.spends.get(&key) {
            self.problems.push(format!(
                "double charge: idempotency key {key:#018x} spent in {} seq {} and again in {} \
                 seq {}",
                first.file, first.seq, file, seq
            ));
        } else {
            self.spends.insert(key, at);
        }
    }

    fn lot(&mut self, campaign: u32, day: i64, shard: ShardNo, epoch: u32) -> &mut Figures {
        self.lots.entry((campaign, day, shard, epoch)).or_default()
    }

    fn check_lots(&mut self) {
        if !self.snapshots.is_empty() {
            // Grants before a snapshot are not in the records: lots cannot be checked.
            return;
        }
        for (&(c, d, s, e), f) in &self.lots {
            if f.spent > f.consumed() {
                self.problems.push(format!(
                    "campaign {c} day {} shard {s} epoch {e}: committed spend {} exceeds what the \
                     lot kept of its grants ({} granted - {} returned)",
                    day_name(d),
                    f.spent,
                    f.granted,
                    f.returned
                ));
            }
            if f.returned + f.reported + f.reclaimed > f.granted {
                self.problems.push(format!(
                    "campaign {c} day {} shard {s} epoch {e}: returned {} + reported {} + \
                     reclaimed {} exceed the {} granted",
                    day_name(d),
                    f.returned,
                    f.reported,
                    f.reclaimed,
                    f.granted
                ));
            }
        }
    }

    /// Figures per campaign-day (lots summed).
    pub fn days(&self) -> BTreeMap<(u32, i64), Figures> {
        let mut out: BTreeMap<(u32, i64), Figures> = BTreeMap::new();
        for (&(c, d, _, _), f) in &self.lots {
            out.entry((c, d)).or_default().add(f);
        }
        out
    }

    /// Unrecorded money of a campaign-day's *closed* lots (reclaimed or returned, nothing
    /// outstanding), summed per lot so one lot's surplus never covers another's deficit. Live
    /// lots do not count: their unspent budget is not spend.
    pub fn unrecorded(&self, campaign: u32, day: i64) -> u64 {
        self.day_lots(campaign, day)
            .filter(|f| f.outstanding() == 0)
            .map(Figures::unrecorded)
            .sum()
    }

    /// Budget of a campaign-day still held by live shards.
    pub fn outstanding(&self, campaign: u32, day: i64) -> u64 {
        self.day_lots(campaign, day).map(Figures::outstanding).sum()
    }

    fn day_lots(&self, campaign: u32, day: i64) -> impl Iterator<Item = &Figures> {
        self.lots
            .range((campaign, day, 0, 0)..=(campaign, day, ShardNo::MAX, u32::MAX))
            .map(|(_, f)| f)
    }
}

/// `2026-11-28` for a day number (days since 1970-01-01 in the advertiser's zone); `earlier`
/// for [`EARLIER_DAY`].
pub fn day_name(day: i64) -> String {
    if day == EARLIER_DAY {
        return "earlier".to_string();
    }
    let (y, m, d) = engine::catalog::civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}
