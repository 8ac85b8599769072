//! The catalog's eligibility index: for each value of each indexed dimension (banner size,
//! creative format, country, region, OS, device type, hour, weekday, site or app), the bit set of
//! campaigns that could accept it. Selection ANDs the sets of a request's values and visits only
//! the campaigns left, in catalog order, where it still runs every exact rule: the index is a
//! filter that may let a campaign through (flight dates, video duration are not indexed), never
//! one that drops an eligible campaign. So what selection returns does not depend on it, only
//! how many campaigns it looks at.
//!
//! Why: a linear scan with string compares per campaign was the largest single cost of the
//! no-bid path (3.7 us of ~26 us per request with 200 demo campaigns, `perf record`), and grows
//! with the catalog; a request here costs a few hash lookups and one AND per 64 campaigns.

/// The index's maps are probed several times per request; ahash instead of std's SipHash (these
/// keys come from the operator's catalog, not from requests, so flooding is not a concern:
/// a request's value is only looked up, never inserted).
type HashMap<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;

use super::{CampaignEntry, Creative, Format};

/// A bit per campaign (bit `i % 64` of word `i / 64` = campaign `i`).
type Bits = Box<[u64]>;

/// Banner sizes resolved per probe without allocating; a slot listing more goes by the
/// "has any banner" set.
const SIZES_RESOLVED: usize = 8;

/// One list-valued targeting dimension (countries, regions, OS).
#[derive(Debug, Clone)]
struct ListDimension {
    /// Campaigns with an empty list (accept any value, known or not).
    open: Bits,
    /// Per listed value: campaigns listing it, plus the open ones.
    by_value: HashMap<String, Bits>,
}

impl ListDimension {
    fn build<'a>(words: usize, lists: impl Iterator<Item = &'a [String]>) -> ListDimension {
        let lists: Vec<&[String]> = lists.collect();
        let mut open = empty(words);
        for (i, list) in lists.iter().enumerate() {
            if list.is_empty() {
                set(&mut open, i);
            }
        }
        let mut by_value: HashMap<String, Bits> = HashMap::default();
        for (i, list) in lists.iter().enumerate() {
            for value in *list {
                set(
                    by_value
                        .entry(value.clone())
                        .or_insert_with(|| open.clone()),
                    i,
                );
            }
        }
        ListDimension { open, by_value }
    }

    /// Campaigns that may accept `value` (an unknown or empty value: only the open ones, as
    /// `select::list_allows` rules).
    fn allowing(&self, value: &str) -> &[u64] {
        if value.is_empty() {
            return &self.open;
        }
        self.by_value.get(value).map_or(&self.open[..], |b| &b[..])
    }
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct EligibilityIndex {
    words: usize,
    all: Bits,
    banner_any: Bits,
    banner_size: HashMap<(u32, u32), Bits>,
    video: Bits,
    native: Bits,
    countries: ListDimension,
    regions: ListDimension,
    os: ListDimension,
    /// Index `0..8`: campaigns accepting that device type; `8`: any other value.
    device_type: Vec<Bits>,
    hour: Vec<Bits>,
    weekday: Vec<Bits>,
    site: Bits,
    app: Bits,
}

/// Dimensions a campaign must pass besides format: country, region, OS, device type, hour,
/// weekday, site or app.
const FILTERS: usize = 7;

/// The request-side lookups of [`EligibilityIndex::probe`], resolved once per slot.
#[derive(Debug)]
pub struct Probe<'a> {
    index: &'a EligibilityIndex,
    sizes: [&'a [u64]; SIZES_RESOLVED],
    size_count: usize,
    video: Option<&'a [u64]>,
    native: Option<&'a [u64]>,
    filters: [&'a [u64]; FILTERS],
}

impl EligibilityIndex {
    pub(super) fn build(campaigns: &[CampaignEntry], creatives: &[Creative]) -> EligibilityIndex {
        let words = campaigns.len().div_ceil(64);
        let mut all = empty(words);
        let (mut banner_any, mut video, mut native) = (empty(words), empty(words), empty(words));
        let mut banner_size: HashMap<(u32, u32), Bits> = HashMap::default();
        for (i, c) in campaigns.iter().enumerate() {
            set(&mut all, i);
            for cr in c.creatives.iter().map(|&k| &creatives[k]) {
                match cr.format {
                    Format::Banner => {
                        set(&mut banner_any, i);
                        set(
                            banner_size
                                .entry((cr.w, cr.h))
                                .or_insert_with(|| empty(words)),
                            i,
                        );
                    }
                    Format::Video => set(&mut video, i),
                    Format::Native => set(&mut native, i),
                }
            }
        }
        let by = |accepts: &dyn Fn(&CampaignEntry) -> bool| -> Bits {
            let mut b = empty(words);
            for (i, c) in campaigns.iter().enumerate() {
                if accepts(c) {
                    set(&mut b, i);
                }
            }
            b
        };
        EligibilityIndex {
            words,
            banner_any,
            banner_size,
            video,
            native,
            countries: ListDimension::build(words, campaigns.iter().map(|c| &c.countries[..])),
            regions: ListDimension::build(words, campaigns.iter().map(|c| &c.regions[..])),
            os: ListDimension::build(words, campaigns.iter().map(|c| &c.os_lower[..])),
            device_type: (0..=8u8)
                .map(|v| {
                    by(&|c| {
                        c.device_types_mask == u8::MAX
                            || (v < 8 && c.device_types_mask & (1 << v) != 0)
                    })
                })
                .collect(),
            hour: (0..24)
                .map(|h| by(&|c| c.hours_mask & (1 << h) != 0))
                .collect(),
            weekday: (0..7)
                .map(|d| by(&|c| c.weekdays_mask & (1 << d) != 0))
                .collect(),
            site: by(&|c| c.site_ok),
            app: by(&|c| c.app_ok),
            all,
        }
    }

    /// Resolves a slot's and a context's values to their campaign sets.
    pub fn probe<'a>(
        &'a self,
        ctx: &crate::intake::Context,
        slot: &crate::intake::Slot,
    ) -> Probe<'a> {
        let mut sizes = [&self.all[..0]; SIZES_RESOLVED];
        let mut size_count = 0;
        if slot.formats_mask & Format::Banner.bit() != 0 {
            if slot.banner_sizes.len() > SIZES_RESOLVED {
                sizes[0] = &self.banner_any;
                size_count = 1;
            } else {
                for s in &slot.banner_sizes {
                    if let Some(b) = self.banner_size.get(s) {
                        sizes[size_count] = b;
                        size_count += 1;
                    }
                }
            }
        }
        let format =
            |f: Format, bits: &'a Bits| (slot.formats_mask & f.bit() != 0).then_some(&bits[..]);
        let video = format(Format::Video, &self.video);
        let native = format(Format::Native, &self.native);
        // No campaign has a creative for a slot without a format match: the other dimensions
        // cannot add any, so they are not looked up.
        let no_format = size_count == 0 && video.is_none() && native.is_none();
        Probe {
            index: self,
            sizes,
            size_count,
            video,
            native,
            filters: if no_format {
                [&self.all[..]; FILTERS]
            } else {
                self.filters(ctx)
            },
        }
    }

    /// The campaigns each non-format dimension allows for this context.
    fn filters(&self, ctx: &crate::intake::Context) -> [&[u64]; FILTERS] {
        [
            self.countries.allowing(&ctx.country),
            self.regions.allowing(&ctx.region),
            self.os.allowing(&ctx.os_lower),
            &self.device_type[usize::from(ctx.device_type.min(8))],
            self.hour
                .get(usize::from(ctx.local_hour))
                .map_or(&self.all[..], |b| &b[..]),
            self.weekday
                .get(usize::from(ctx.local_weekday))
                .map_or(&self.all[..], |b| &b[..]),
            if ctx.is_app { &self.app } else { &self.site },
        ]
    }
}

impl Probe<'_> {
    /// Words of campaign bits (`64 * words() >= campaigns`).
    pub fn words(&self) -> usize {
        self.index.words
    }

    /// Indexes of the campaigns that pass every indexed dimension, ascending.
    pub fn campaigns(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.words()).flat_map(move |w| BitIter(self.word(w)).map(move |b| w * 64 + b))
    }

    /// Campaigns `64 * w .. 64 * w + 64` that pass every indexed dimension.
    #[inline]
    pub fn word(&self, w: usize) -> u64 {
        let mut format = self.sizes[..self.size_count]
            .iter()
            .fold(0, |acc, b| acc | b[w]);
        format |= self.video.map_or(0, |b| b[w]);
        format |= self.native.map_or(0, |b| b[w]);
        self.filters.iter().fold(format, |acc, b| acc & b[w])
    }
}

/// The set bits of a word, lowest first.
struct BitIter(u64);

impl Iterator for BitIter {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.0 == 0 {
            return None;
        }
        let bit = self.0.trailing_zeros() as usize;
        self.0 &= self.0 - 1;
        Some(bit)
    }
}

fn empty(words: usize) -> Bits {
    vec![0; words].into_boxed_slice()
}

fn set(bits: &mut [u64], i: usize) {
    bits[i / 64] |= 1 << (i % 64);
}
