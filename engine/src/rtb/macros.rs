//! OpenRTB notice URL macros (`${AUCTION_ID}`, `${AUCTION_BID_ID}`, `${AUCTION_IMP_ID}`,
//! `${AUCTION_SEAT_ID}`, `${AUCTION_AD_ID}`, `${AUCTION_PRICE}`, `${AUCTION_CURRENCY}`,
//! `${AUCTION_LOSS}`, `${AUCTION_MIN_TO_WIN}`): substituted, percent-encoded, into win (`nurl`),
//! billing (`burl`) and loss (`lurl`) URLs. A macro without a value becomes empty; text that is not
//! one of these macros is kept as written.
//!
//! Owns: substitution and price formatting. Must not know: when notices are sent.

/// Values for one notice.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MacroValues<'a> {
    pub auction_id: &'a str,
    pub bid_id: &'a str,
    pub imp_id: &'a str,
    pub seat_id: &'a str,
    pub ad_id: &'a str,
    /// Clearing price, CPM micros.
    pub price_micros: Option<u64>,
    pub currency: &'a str,
    pub loss: Option<u32>,
    /// Lowest price that would have won, CPM micros.
    pub min_to_win_micros: Option<u64>,
}

/// CPM micros as a decimal amount without trailing zeros: 1_500_000 -> "1.5".
pub fn format_price(micros: u64) -> String {
    let whole = micros / 1_000_000;
    let frac = micros % 1_000_000;
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:06}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

fn push_encoded(out: &mut String, value: &str) {
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// `url` with every known macro replaced.
pub fn substitute(url: &str, v: &MacroValues<'_>) -> String {
    let mut out = String::with_capacity(url.len() + 32);
    let mut rest = url;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = &after[..end];
        let owned;
        let value: Option<&str> = match name {
            "AUCTION_ID" => Some(v.auction_id),
            "AUCTION_BID_ID" => Some(v.bid_id),
            "AUCTION_IMP_ID" => Some(v.imp_id),
            "AUCTION_SEAT_ID" => Some(v.seat_id),
            "AUCTION_AD_ID" => Some(v.ad_id),
            "AUCTION_CURRENCY" => Some(v.currency),
            "AUCTION_PRICE" | "AUCTION_MIN_TO_WIN" | "AUCTION_LOSS" => {
                owned = match name {
                    "AUCTION_PRICE" => v.price_micros.map(format_price),
                    "AUCTION_MIN_TO_WIN" => v.min_to_win_micros.map(format_price),
                    _ => v.loss.map(|c| c.to_string()),
                }
                .unwrap_or_default();
                Some(owned.as_str())
            }
            _ => None,
        };
        match value {
            Some(text) => push_encoded(&mut out, text),
            None => out.push_str(&rest[start..start + 2 + end + 1]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_macro_is_substituted_and_encoded() {
        let v = MacroValues {
            auction_id: "req 1",
            bid_id: "b&1",
            imp_id: "i1",
            seat_id: "seat",
            ad_id: "ad9",
            price_micros: Some(1_250_000),
            currency: "USD",
            loss: Some(102),
            min_to_win_micros: Some(2_000_001),
        };
        let url = "http://h/n?a=${AUCTION_ID}&b=${AUCTION_BID_ID}&i=${AUCTION_IMP_ID}&s=${AUCTION_SEAT_ID}\
                   &ad=${AUCTION_AD_ID}&p=${AUCTION_PRICE}&c=${AUCTION_CURRENCY}&l=${AUCTION_LOSS}&m=${AUCTION_MIN_TO_WIN}";
        assert_eq!(
            substitute(url, &v),
            "http://h/n?a=req%201&b=b%261&i=i1&s=seat&ad=ad9&p=1.25&c=USD&l=102&m=2.000001"
        );
    }

    #[test]
    fn missing_values_are_empty_and_unknown_text_is_kept() {
        let v = MacroValues::default();
        assert_eq!(
            substitute("x?p=${AUCTION_PRICE}&o=${OTHER}&t=${", &v),
            "x?p=&o=${OTHER}&t=${"
        );
        assert_eq!(substitute("plain", &v), "plain");
    }

    #[test]
    fn prices_format_without_trailing_zeros() {
        assert_eq!(format_price(0), "0");
        assert_eq!(format_price(3_000_000), "3");
        assert_eq!(format_price(10_000), "0.01");
        assert_eq!(format_price(1_234_567), "1.234567");
    }
}
