//! Ledger records: every money move of the budget, as written to the write-ahead log and read
//! back by recovery and `tools/ledger`.
//!
//! Encoding (compact, little-endian-free): one tag byte, then each field as an unsigned LEB128
//! varint (`day` zigzag-encoded first). A record is one WAL payload; the WAL adds length,
//! sequence and checksum. Decoding never panics: a short or malformed payload is an error that
//! names the field.
//!
//! Owns: the record set and its bytes. Must not know: files, fsync, framing.

/// Shard index on the host.
pub type ShardNo = u16;

/// One ledger record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LedgerRecord {
    /// A shard (re)started as `epoch`; whatever it held under older epochs was reclaimed first.
    Register { shard: ShardNo, epoch: u32 },
    /// The allocator granted `chunk` (+ `slack`, the shard's share of the inaccuracy bound).
    Grant {
        shard: ShardNo,
        epoch: u32,
        campaign: u32,
        day: i64,
        chunk: u64,
        slack: u64,
    },
    /// The shard gave back unspent budget (period end or shutdown).
    Return {
        shard: ShardNo,
        epoch: u32,
        campaign: u32,
        day: i64,
        chunk: u64,
        slack: u64,
        /// What the shard reported spent from that lot.
        spent: u64,
    },
    /// The allocator counted an outstanding lot as spent (stale shard, crash, lost return).
    Reclaim {
        shard: ShardNo,
        epoch: u32,
        campaign: u32,
        day: i64,
        chunk: u64,
        slack: u64,
    },
    /// A shard charged `cost` for impression `key` (hash of request id + imp id).
    Spend {
        shard: ShardNo,
        epoch: u32,
        campaign: u32,
        day: i64,
        key: u64,
        cost: u64,
    },
    /// The allocator moved `campaign` to local day `day`.
    PeriodRoll { campaign: u32, day: i64 },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("empty record")]
    Empty,
    #[error("unknown record tag {0}")]
    UnknownTag(u8),
    #[error("record {kind}: field {field} is truncated or overlong")]
    Field {
        kind: &'static str,
        field: &'static str,
    },
    #[error("record {kind}: {extra} trailing bytes")]
    Trailing { kind: &'static str, extra: usize },
}

const TAG_REGISTER: u8 = 1;
const TAG_GRANT: u8 = 2;
const TAG_RETURN: u8 = 3;
const TAG_RECLAIM: u8 = 4;
const TAG_SPEND: u8 = 5;
const TAG_ROLL: u8 = 6;

/// Appends `v` as an unsigned LEB128 varint (also used by the WAL snapshots in `durable.rs`).
pub(crate) fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Reads varint fields; errors name the record kind and field.
pub(crate) struct Reader<'a> {
    pub(crate) buf: &'a [u8],
    pub(crate) kind: &'static str,
}

impl Reader<'_> {
    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, RecordError> {
        let err = RecordError::Field {
            kind: self.kind,
            field,
        };
        let mut v: u64 = 0;
        for i in 0..10 {
            let Some((&b, rest)) = self.buf.split_first() else {
                return Err(err);
            };
            self.buf = rest;
            let bits = u64::from(b & 0x7f);
            // Overlong (a zero final byte after the first) or past 64 bits: not canonical.
            if (i == 9 && bits > 1) || (i > 0 && b == 0) {
                return Err(err);
            }
            v |= bits << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(err)
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, RecordError> {
        let v = self.u64(field)?;
        u32::try_from(v).map_err(|_| RecordError::Field {
            kind: self.kind,
            field,
        })
    }

    pub(crate) fn shard(&mut self) -> Result<ShardNo, RecordError> {
        let v = self.u64("shard")?;
        ShardNo::try_from(v).map_err(|_| RecordError::Field {
            kind: self.kind,
            field: "shard",
        })
    }

    pub(crate) fn day(&mut self) -> Result<i64, RecordError> {
        Ok(unzigzag(self.u64("day")?))
    }

    pub(crate) fn end(self) -> Result<(), RecordError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(RecordError::Trailing {
                kind: self.kind,
                extra: self.buf.len(),
            })
        }
    }
}

impl LedgerRecord {
    /// The record's name in errors and tool output.
    pub fn kind(&self) -> &'static str {
        match self {
            LedgerRecord::Register { .. } => "register",
            LedgerRecord::Grant { .. } => "grant",
            LedgerRecord::Return { .. } => "return",
            LedgerRecord::Reclaim { .. } => "reclaim",
            LedgerRecord::Spend { .. } => "spend",
            LedgerRecord::PeriodRoll { .. } => "period_roll",
        }
    }

    /// Appends the encoding to `out` (reused buffer: no allocation once it has grown).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match *self {
            LedgerRecord::Register { shard, epoch } => {
                out.push(TAG_REGISTER);
                put(out, u64::from(shard));
                put(out, u64::from(epoch));
            }
            LedgerRecord::Grant {
                shard,
                epoch,
                campaign,
                day,
                chunk,
                slack,
            } => lot(out, TAG_GRANT, shard, epoch, campaign, day, &[chunk, slack]),
            LedgerRecord::Return {
                shard,
                epoch,
                campaign,
                day,
                chunk,
                slack,
                spent,
            } => lot(
                out,
                TAG_RETURN,
                shard,
                epoch,
                campaign,
                day,
                &[chunk, slack, spent],
            ),
            LedgerRecord::Reclaim {
                shard,
                epoch,
                campaign,
                day,
                chunk,
                slack,
            } => lot(
                out,
                TAG_RECLAIM,
                shard,
                epoch,
                campaign,
                day,
                &[chunk, slack],
            ),
            LedgerRecord::Spend {
                shard,
                epoch,
                campaign,
                day,
                key,
                cost,
            } => lot(out, TAG_SPEND, shard, epoch, campaign, day, &[key, cost]),
            LedgerRecord::PeriodRoll { campaign, day } => {
                out.push(TAG_ROLL);
                put(out, u64::from(campaign));
                put(out, zigzag(day));
            }
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(32);
        self.encode_into(&mut v);
        v
    }

    pub fn decode(bytes: &[u8]) -> Result<LedgerRecord, RecordError> {
        let (&tag, rest) = bytes.split_first().ok_or(RecordError::Empty)?;
        let kind = match tag {
            TAG_REGISTER => "register",
            TAG_GRANT => "grant",
            TAG_RETURN => "return",
            TAG_RECLAIM => "reclaim",
            TAG_SPEND => "spend",
            TAG_ROLL => "period_roll",
            t => return Err(RecordError::UnknownTag(t)),
        };
        let mut r = Reader { buf: rest, kind };
        let rec = match tag {
            TAG_REGISTER => LedgerRecord::Register {
                shard: r.shard()?,
                epoch: r.u32("epoch")?,
            },
            TAG_ROLL => LedgerRecord::PeriodRoll {
                campaign: r.u32("campaign")?,
                day: r.day()?,
            },
            _ => {
                let (shard, epoch, campaign, day) =
                    (r.shard()?, r.u32("epoch")?, r.u32("campaign")?, r.day()?);
                match tag {
                    TAG_GRANT => LedgerRecord::Grant {
                        shard,
                        epoch,
                        campaign,
                        day,
                        chunk: r.u64("chunk")?,
                        slack: r.u64("slack")?,
                    },
                    TAG_RETURN => LedgerRecord::Return {
                        shard,
                        epoch,
                        campaign,
                        day,
                        chunk: r.u64("chunk")?,
                        slack: r.u64("slack")?,
                        spent: r.u64("spent")?,
                    },
                    TAG_RECLAIM => LedgerRecord::Reclaim {
                        shard,
                        epoch,
                        campaign,
                        day,
                        chunk: r.u64("chunk")?,
                        slack: r.u64("slack")?,
                    },
                    _ => LedgerRecord::Spend {
                        shard,
                        epoch,
                        campaign,
                        day,
                        key: r.u64("key")?,
                        cost: r.u64("cost")?,
                    },
                }
            }
        };
        r.end()?;
        Ok(rec)
    }
}

fn lot(
    out: &mut Vec<u8>,
    tag: u8,
    shard: ShardNo,
    epoch: u32,
    campaign: u32,
    day: i64,
    tail: &[u64],
) {
    out.push(tag);
    put(out, u64::from(shard));
    put(out, u64::from(epoch));
    put(out, u64::from(campaign));
    put(out, zigzag(day));
    for &v in tail {
        put(out, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn any_record() -> impl Strategy<Value = LedgerRecord> {
        let lot = (any::<u16>(), any::<u32>(), any::<u32>(), any::<i64>());
        prop_oneof![
            (any::<u16>(), any::<u32>())
                .prop_map(|(shard, epoch)| LedgerRecord::Register { shard, epoch }),
            (lot, any::<u64>(), any::<u64>()).prop_map(|((s, e, c, d), a, b)| {
                LedgerRecord::Grant {
                    shard: s,
                    epoch: e,
                    campaign: c,
                    day: d,
                    chunk: a,
                    slack: b,
                }
            }),
            (lot, any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|((s, e, c, d), a, b, x)| {
                LedgerRecord::Return {
                    shard: s,
                    epoch: e,
                    campaign: c,
                    day: d,
                    chunk: a,
                    slack: b,
                    spent: x,
                }
            }),
            (lot, any::<u64>(), any::<u64>()).prop_map(|((s, e, c, d), a, b)| {
                LedgerRecord::Reclaim {
                    shard: s,
                    epoch: e,
                    campaign: c,
                    day: d,
                    chunk: a,
                    slack: b,
                }
            }),
            (lot, any::<u64>(), any::<u64>()).prop_map(|((s, e, c, d), k, x)| {
                LedgerRecord::Spend {
                    shard: s,
                    epoch: e,
                    campaign: c,
                    day: d,
                    key: k,
                    cost: x,
                }
            }),
            (any::<u32>(), any::<i64>())
                .prop_map(|(campaign, day)| LedgerRecord::PeriodRoll { campaign, day }),
        ]
    }

    #[test]
    fn compact() {
        let r = LedgerRecord::Spend {
            shard: 1,
            epoch: 2,
            campaign: 300,
            day: 20_000,
            key: 0xdead_beef,
            cost: 2_500,
        };
        assert!(r.encode().len() <= 16, "{}", r.encode().len());
        assert_eq!(LedgerRecord::decode(&[]), Err(RecordError::Empty));
        assert_eq!(LedgerRecord::decode(&[9]), Err(RecordError::UnknownTag(9)));
        let mut b = r.encode();
        b.pop();
        assert_eq!(
            LedgerRecord::decode(&b),
            Err(RecordError::Field {
                kind: "spend",
                field: "cost"
            })
        );
    }

    proptest! {
        #[test]
        fn round_trips(r in any_record()) {
            prop_assert_eq!(LedgerRecord::decode(&r.encode()), Ok(r));
        }

        #[test]
        fn garbage_never_panics(b in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(r) = LedgerRecord::decode(&b) {
                prop_assert_eq!(r.encode(), b);
            }
        }
    }
}
