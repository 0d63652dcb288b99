//! Human units: sizes (`"512MiB"`), CPU amounts (`"30%"`, `1.5`), octal modes, rlimit values.
//!
//! Parsers return a short reason on failure; validation wraps it in a diagnostic with a span.

use std::fmt;

use serde::Deserialize;

/// A number or a string with a unit, as written in the manifest.
#[derive(Debug, Clone, PartialEq)]
pub enum Quantity {
    /// A TOML integer.
    Int(i64),
    /// A TOML float.
    Float(f64),
    /// A TOML string, e.g. `"512MiB"` or `"30%"`.
    Str(String),
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Quantity::Int(i) => write!(f, "{i}"),
            // `{}` spells 1e300 with 301 digits; a diagnostic quotes the value as written.
            Quantity::Float(x) if x.abs() >= 1e16 || (*x != 0.0 && x.abs() < 1e-6) => {
                write!(f, "{x:e}")
            }
            Quantity::Float(x) => write!(f, "{x}"),
            Quantity::Str(s) => write!(f, "\"{s}\""),
        }
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Quantity;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number or a string with a unit")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Quantity, E> {
                Ok(Quantity::Int(v))
            }
            /// toml gives integers above i64::MAX as u64; the message names the number, as
            /// serde's own refusals of i128 and u128 do (see manifest::load).
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Quantity, E> {
                i64::try_from(v)
                    .map(Quantity::Int)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Quantity, E> {
                Ok(Quantity::Float(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Quantity, E> {
                Ok(Quantity::Str(v.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(feature = "schema-gen")]
impl schemars::JsonSchema for Quantity {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Quantity".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A number, or a string with a unit (\"512MiB\", \"30%\").",
            "type": ["number", "string"]
        })
    }
}

/// Bytes in each size suffix we accept. Binary multiples throughout, as docker, systemd and the
/// kernel's own `memparse` read "1G": a limit written `1G` is 1073741824 bytes. Kubernetes's
/// binary suffixes (`Ki`, `Mi`, `Gi`, `Ti`) mean the same; its decimal `G` (10^9) and milli `m`
/// do not: `"1G"` is read as docker reads it, and `"300m"` as 300 MiB (docker's `-m 300m`), never
/// as Kubernetes's 0.3 bytes.
const SIZE_SUFFIXES: &[(&str, u64)] = &[
    ("", 1),
    ("b", 1),
    ("k", 1 << 10),
    ("kb", 1 << 10),
    ("ki", 1 << 10),
    ("kib", 1 << 10),
    ("m", 1 << 20),
    ("mb", 1 << 20),
    ("mi", 1 << 20),
    ("mib", 1 << 20),
    ("g", 1 << 30),
    ("gb", 1 << 30),
    ("gi", 1 << 30),
    ("gib", 1 << 30),
    ("t", 1 << 40),
    ("tb", 1 << 40),
    ("ti", 1 << 40),
    ("tib", 1 << 40),
];

/// The words that mean "no limit" where a limit takes them: cgroup v2's `max`, systemd's
/// `infinity`, and `unlimited` as rlimits spell it.
pub const UNLIMITED: &[&str] = &["max", "infinity", "unlimited"];

/// Whether `q` is one of the [`UNLIMITED`] words (any case, surrounding blanks ignored).
pub fn is_unlimited(q: &Quantity) -> bool {
    matches!(q, Quantity::Str(s) if UNLIMITED.iter().any(|w| s.trim().eq_ignore_ascii_case(w)))
}

/// Split `"1.5GiB"` into `("1.5", "GiB")`.
fn split_number(s: &str) -> (&str, &str) {
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    (&s[..end], s[end..].trim())
}

/// A decimal number as written (`"512"`, `"1.5"`) times a unit's `mult`, at most `max`.
#[derive(Debug, PartialEq)]
enum Scaled {
    Ok(u64),
    NotANumber,
    TooLarge,
}

/// Scale `num` by `mult`; `round` settles a fractional result. Whole numbers are multiplied as
/// integers, exactly and with overflow checked; f64 would round 2^53 + 1, and `as u64` saturates.
fn scale(num: &str, mult: u64, max: u64, round: fn(f64) -> f64) -> Scaled {
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Scaled::NotANumber;
    }
    if !num.contains('.') {
        // Only digits: parsing fails only by overflowing.
        return match num.parse::<u64>().ok().and_then(|n| n.checked_mul(mult)) {
            Some(v) if v <= max => Scaled::Ok(v),
            _ => Scaled::TooLarge,
        };
    }
    let Ok(value) = num.parse::<f64>() else {
        return Scaled::NotANumber;
    };
    let v = round(value * mult as f64);
    // `max as f64` rounds up to a power of two for our bounds (2^63, 2^64), so `<` keeps the
    // cast below in range; the second check is for any bound that rounds down.
    if v.is_finite() && v < max as f64 && (v as u64) <= max {
        Scaled::Ok(v as u64)
    } else {
        Scaled::TooLarge
    }
}

/// The largest size: the largest TOML integer, so that a size means the same whether it is
/// written as a number of bytes or with a unit.
pub const MAX_SIZE: u64 = i64::MAX as u64;

/// A size in bytes: an integer, or a string like `"512MiB"`, `"1G"`, `"1.5GiB"`.
pub fn parse_size(q: &Quantity) -> Result<u64, String> {
    match q {
        Quantity::Int(i) => u64::try_from(*i).map_err(|_| "a size cannot be negative".into()),
        Quantity::Float(_) => {
            Err("a size in bytes must be a whole number or a string with a unit".into())
        }
        Quantity::Str(s) => {
            let s = s.trim();
            let (num, unit) = split_number(s);
            if num.is_empty() {
                return Err(format!("`{s}` does not start with a number"));
            }
            let mult = SIZE_SUFFIXES
                .iter()
                .find(|(u, _)| unit.eq_ignore_ascii_case(u))
                .map(|(_, m)| *m)
                .ok_or_else(|| format!("unknown size unit `{unit}`"))?;
            match scale(num, mult, MAX_SIZE, f64::floor) {
                Scaled::Ok(bytes) => Ok(bytes),
                Scaled::NotANumber => Err(format!("`{num}` is not a number")),
                Scaled::TooLarge => Err(format!(
                    "`{s}` is too large: sizes go up to {MAX_SIZE} bytes (just under 8 EiB)"
                )),
            }
        }
    }
}

/// A CPU bandwidth limit in microseconds of CPU time per period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuQuota {
    /// CPU time allowed per period (µs).
    pub quota_us: u64,
    /// The period (µs): always 100000, the kernel's default.
    pub period_us: u64,
}

/// The period used for every CPU quota: the kernel's default, 100 ms.
pub const CPU_PERIOD_US: u64 = 100_000;

/// The largest quota: cgroup v1 reads `cpu.cfs_quota_us` as a signed 64-bit number.
const MAX_QUOTA_US: u64 = i64::MAX as u64;

/// CPU as `"30%"` (of one CPU), a number of CPUs (`1.5`, `2`, `"0.5"`), or Kubernetes's millicpus
/// (`"300m"`: 0.3 CPUs).
pub fn parse_cpu(q: &Quantity) -> Result<CpuQuota, String> {
    let cpus = match q {
        Quantity::Int(i) => *i as f64,
        Quantity::Float(x) => *x,
        Quantity::Str(s) => {
            let s = s.trim();
            if let Some(p) = s.strip_suffix('%') {
                let pct: f64 = p
                    .trim()
                    .parse()
                    .map_err(|_| format!("`{s}` is not a percentage"))?;
                pct / 100.0
            } else if let Some(m) = s.strip_suffix('m') {
                // Kubernetes's millicpu: "300m" is 0.3 CPUs.
                let milli: f64 = m
                    .trim()
                    .parse()
                    .map_err(|_| format!("`{s}` is not a number of millicpus"))?;
                milli / 1000.0
            } else {
                s.parse()
                    .map_err(|_| format!("`{s}` is neither a percentage nor a number of CPUs"))?
            }
        }
    };
    // f64 parsing takes "nan" and "inf"; neither is an amount.
    if cpus.is_nan() {
        return Err("not a number".into());
    }
    if cpus <= 0.0 {
        return Err("CPU must be more than zero".into());
    }
    let quota = (cpus * CPU_PERIOD_US as f64).round();
    // 2^63 is exact in f64: below it, the cast neither saturates nor wraps (NaN is out above).
    if quota >= MAX_QUOTA_US as f64 {
        return Err("too large: no CPU quota can express it".into());
    }
    Ok(CpuQuota {
        quota_us: quota as u64,
        period_us: CPU_PERIOD_US,
    })
}

/// The largest mode: set-user-id, set-group-id, sticky and rwx for all.
const MAX_MODE: u32 = 0o7777;

/// A file mode: octal string (`"1777"`, `"0755"`) or integer (`0o1777`).
pub fn parse_mode(q: &Quantity) -> Result<u32, String> {
    let too_large = |m: &dyn fmt::Display| format!("mode {m} is more than 7777");
    match q {
        Quantity::Int(i) if *i < 0 => Err("a mode cannot be negative".into()),
        Quantity::Int(i) => u32::try_from(*i)
            .ok()
            .filter(|m| *m <= MAX_MODE)
            .ok_or_else(|| too_large(&format_args!("{i:o}"))),
        Quantity::Float(_) => Err("a mode is an octal number like \"1777\"".into()),
        Quantity::Str(s) => {
            let t = s.trim();
            let t = t.strip_prefix("0o").unwrap_or(t);
            // from_str_radix would also take a sign; a mode is octal digits only.
            if t.is_empty() || !t.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
                return Err(format!("`{s}` is not an octal mode"));
            }
            let digits = t.trim_start_matches('0');
            // At most four octal digits fit: longer ones would also overflow a u32.
            if digits.len() > 4 {
                return Err(too_large(&digits));
            }
            u32::from_str_radix(if digits.is_empty() { "0" } else { digits }, 8)
                .ok()
                .filter(|m| *m <= MAX_MODE)
                .ok_or_else(|| format!("`{s}` is not an octal mode"))
        }
    }
}

/// An rlimit value: a non-negative integer, or `"unlimited"` / `"infinity"` (RLIM_INFINITY).
pub fn parse_rlimit_value(q: &Quantity) -> Result<Option<u64>, String> {
    match q {
        Quantity::Int(i) => u64::try_from(*i)
            .map(Some)
            .map_err(|_| "a limit cannot be negative".into()),
        Quantity::Float(_) => Err("a limit is a whole number".into()),
        Quantity::Str(s) if s == "unlimited" || s == "infinity" => Ok(None),
        Quantity::Str(s) => Err(format!("`{s}` is neither a number nor \"unlimited\"")),
    }
}

/// The longest duration: whatever milliseconds fit in 64 bits (584 million years).
const MAX_DURATION_MS: u64 = u64::MAX;

/// A duration in milliseconds: `"10s"`, `"500ms"`, `"1m"`, `"1.5s"`, or an integer of seconds.
pub fn parse_duration_ms(q: &Quantity) -> Result<u64, String> {
    let too_long =
        || format!("too long: durations go up to {MAX_DURATION_MS} ms (584 million years)");
    match q {
        Quantity::Int(i) => {
            let secs =
                u64::try_from(*i).map_err(|_| "a duration cannot be negative".to_string())?;
            secs.checked_mul(1000).ok_or_else(too_long)
        }
        Quantity::Float(x) if x.is_nan() => Err("a duration must be a number".into()),
        Quantity::Float(x) if *x < 0.0 => Err("a duration cannot be negative".into()),
        Quantity::Float(x) => {
            let ms = (x * 1000.0).round();
            // 2^64 is exact in f64: below it, the cast neither saturates nor wraps.
            if ms < MAX_DURATION_MS as f64 {
                Ok(ms as u64)
            } else {
                Err(too_long())
            }
        }
        Quantity::Str(s) => {
            let s = s.trim();
            let (num, unit) = split_number(s);
            let mult = match unit {
                "ms" => 1,
                "s" | "" => 1000,
                "m" | "min" => 60_000,
                "h" => 3_600_000,
                other => return Err(format!("unknown duration unit `{other}`")),
            };
            match scale(num, mult, MAX_DURATION_MS, f64::round) {
                Scaled::Ok(ms) => Ok(ms),
                Scaled::NotANumber => Err(format!("`{s}` does not start with a number")),
                Scaled::TooLarge => Err(too_long()),
            }
        }
    }
}

/// Render bytes the way a human reads them back: `64 MiB`, `1.5 GiB`, `100 B`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: &[(&str, u64)] = &[
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    for (name, m) in UNITS {
        if bytes >= *m {
            let v = bytes as f64 / *m as f64;
            return if bytes % m == 0 {
                format!("{} {name}", bytes / m)
            } else {
                format!("{v:.2} {name}")
            };
        }
    }
    format!("{bytes} B")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Quantity {
        Quantity::Str(x.into())
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size(&s("512MiB")), Ok(512 << 20));
        assert_eq!(parse_size(&s("1G")), Ok(1 << 30));
        assert_eq!(parse_size(&s("1g")), Ok(1 << 30));
        assert_eq!(parse_size(&s("1.5GiB")), Ok(3 << 29));
        assert_eq!(parse_size(&s("64 MiB")), Ok(64 << 20));
        assert_eq!(parse_size(&s("4096")), Ok(4096));
        // Kubernetes's binary suffixes.
        assert_eq!(parse_size(&s("1Gi")), Ok(1 << 30));
        assert_eq!(parse_size(&s("512Mi")), Ok(512 << 20));
        assert_eq!(parse_size(&s("64Ki")), Ok(64 << 10));
        assert_eq!(parse_size(&s("2Ti")), Ok(2 << 40));
        // docker's reading of a lowercase `m`, not Kubernetes's milli.
        assert_eq!(parse_size(&s("300m")), Ok(300 << 20));
        // No limit is a limit's business (validation), not a size.
        assert!(parse_size(&s("max")).is_err());
        assert!(is_unlimited(&s("max")));
        assert!(is_unlimited(&s(" Infinity ")));
        assert!(is_unlimited(&s("unlimited")));
        assert!(!is_unlimited(&s("1G")));
        assert!(!is_unlimited(&Quantity::Int(0)));
        assert_eq!(parse_size(&Quantity::Int(100)), Ok(100));
        assert!(
            parse_size(&s("12 parsecs"))
                .unwrap_err()
                .contains("unknown size unit `parsecs`")
        );
        assert!(parse_size(&s("MiB")).is_err());
        assert!(parse_size(&Quantity::Int(-1)).is_err());
        assert!(parse_size(&Quantity::Float(1.5)).is_err());
        assert!(parse_size(&s("99999999999T")).is_err());
    }

    #[test]
    fn cpus() {
        let q = |x| parse_cpu(&x).map(|c| c.quota_us);
        assert_eq!(q(s("30%")), Ok(30_000));
        assert_eq!(q(s("250%")), Ok(250_000));
        assert_eq!(q(s("0.3")), Ok(30_000));
        // Kubernetes's millicpus.
        assert_eq!(q(s("300m")), Ok(30_000));
        assert_eq!(q(s("1500m")), Ok(150_000));
        assert!(err(parse_cpu(&s("m"))).contains("millicpus"));
        assert!(q(s("0m")).is_err());
        assert_eq!(q(Quantity::Float(1.5)), Ok(150_000));
        assert_eq!(q(Quantity::Int(2)), Ok(200_000));
        assert!(q(s("0%")).is_err());
        assert!(q(s("-1")).is_err());
        assert!(q(s("lots")).is_err());
        assert_eq!(parse_cpu(&s("30%")).map(|c| c.period_us), Ok(100_000));
    }

    #[test]
    fn modes() {
        assert_eq!(parse_mode(&s("1777")), Ok(0o1777));
        assert_eq!(parse_mode(&s("0755")), Ok(0o755));
        assert_eq!(parse_mode(&Quantity::Int(0o700)), Ok(0o700));
        assert!(parse_mode(&s("999")).is_err());
        assert!(parse_mode(&Quantity::Int(0o17777)).is_err());
    }

    #[test]
    fn rlimits() {
        assert_eq!(parse_rlimit_value(&Quantity::Int(1024)), Ok(Some(1024)));
        assert_eq!(parse_rlimit_value(&s("unlimited")), Ok(None));
        assert!(parse_rlimit_value(&s("lots")).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms(&s("10s")), Ok(10_000));
        assert_eq!(parse_duration_ms(&s("500ms")), Ok(500));
        assert_eq!(parse_duration_ms(&s("1m")), Ok(60_000));
        assert_eq!(parse_duration_ms(&s("1.5s")), Ok(1500));
        assert_eq!(parse_duration_ms(&Quantity::Int(3)), Ok(3000));
        assert!(parse_duration_ms(&s("3 fortnights")).is_err());
        assert!(parse_duration_ms(&Quantity::Int(-1)).is_err());
    }

    fn err<T: std::fmt::Debug>(r: Result<T, String>) -> String {
        r.expect_err("an error")
    }

    #[test]
    fn sizes_never_overflow() {
        assert!(err(parse_size(&s("99999999999TiB"))).contains("too large"));
        assert!(err(parse_size(&s("99999999999.5TiB"))).contains("too large"));
        assert!(err(parse_size(&s("18446744073709551616"))).contains("too large"));
        assert!(err(parse_size(&s("9223372036854775808"))).contains("too large"));
        assert!(err(parse_size(&s("8388608TiB"))).contains("too large"));
        assert_eq!(parse_size(&s("8388607TiB")), Ok(8_388_607 << 40));
        assert_eq!(parse_size(&s("9223372036854775807")), Ok(MAX_SIZE));
        assert_eq!(parse_size(&Quantity::Int(i64::MAX)), Ok(MAX_SIZE));
        // Whole numbers are exact, not rounded through f64.
        assert_eq!(
            parse_size(&s("9007199254740993")),
            Ok(9_007_199_254_740_993)
        );
        assert!(err(parse_size(&s("1.2.3G"))).contains("not a number"));
        assert!(err(parse_size(&Quantity::Int(i64::MIN))).contains("negative"));
    }

    #[test]
    fn cpus_never_overflow() {
        for q in [
            Quantity::Int(i64::MAX),
            Quantity::Float(1e300),
            Quantity::Float(f64::INFINITY),
            s("1e400%"),
            s("99999999999999999999"),
        ] {
            assert!(err(parse_cpu(&q)).contains("too large"), "{q}");
        }
        assert!(err(parse_cpu(&Quantity::Float(f64::NAN))).contains("not a number"));
        assert!(err(parse_cpu(&s("nan"))).contains("not a number"));
        assert!(err(parse_cpu(&Quantity::Int(i64::MIN))).contains("more than zero"));
        assert!(err(parse_cpu(&Quantity::Float(f64::NEG_INFINITY))).contains("more than zero"));
        // Large but expressible: validation then bounds it by the host's CPUs.
        assert_eq!(
            parse_cpu(&Quantity::Int(1 << 40)).map(|c| c.quota_us),
            Ok((1 << 40) * CPU_PERIOD_US)
        );
    }

    #[test]
    fn modes_never_overflow() {
        assert!(err(parse_mode(&Quantity::Int(i64::MAX))).contains("more than 7777"));
        assert!(err(parse_mode(&Quantity::Int(1 << 32))).contains("more than 7777"));
        assert!(err(parse_mode(&Quantity::Int(i64::MIN))).contains("negative"));
        assert!(err(parse_mode(&s("77777777777777777777777"))).contains("more than 7777"));
        assert!(err(parse_mode(&s("17777"))).contains("more than 7777"));
        assert_eq!(parse_mode(&s("00000755")), Ok(0o755));
        assert_eq!(parse_mode(&s("0o0")), Ok(0));
        assert!(err(parse_mode(&s("+755"))).contains("not an octal mode"));
        assert!(err(parse_mode(&s("0o"))).contains("not an octal mode"));
        assert!(err(parse_mode(&s("-1"))).contains("not an octal mode"));
    }

    #[test]
    fn rlimits_never_overflow() {
        assert_eq!(
            parse_rlimit_value(&Quantity::Int(i64::MAX)),
            Ok(Some(i64::MAX as u64))
        );
        assert!(err(parse_rlimit_value(&Quantity::Int(i64::MIN))).contains("negative"));
    }

    #[test]
    fn durations_never_overflow() {
        // i64::MAX seconds is 9.2e21 ms: more than 64 bits hold.
        assert!(err(parse_duration_ms(&Quantity::Int(i64::MAX))).contains("too long"));
        assert!(
            err(parse_duration_ms(&Quantity::Int(18_446_744_073_709_552))).contains("too long")
        );
        assert_eq!(
            parse_duration_ms(&Quantity::Int(18_446_744_073_709_551)),
            Ok(18_446_744_073_709_551_000)
        );
        assert!(err(parse_duration_ms(&s("99999999999999999999h"))).contains("too long"));
        assert!(err(parse_duration_ms(&s("5124095576030432h"))).contains("too long"));
        assert!(err(parse_duration_ms(&s("99999999999999999.5s"))).contains("too long"));
        assert!(err(parse_duration_ms(&s("18446744073709551616ms"))).contains("too long"));
        assert_eq!(
            parse_duration_ms(&s("18446744073709551615ms")),
            Ok(u64::MAX)
        );
        assert!(err(parse_duration_ms(&Quantity::Float(1e300))).contains("too long"));
        assert!(err(parse_duration_ms(&Quantity::Float(f64::INFINITY))).contains("too long"));
        assert!(err(parse_duration_ms(&Quantity::Float(f64::NAN))).contains("a number"));
        assert!(err(parse_duration_ms(&Quantity::Float(-0.5))).contains("negative"));
        assert!(err(parse_duration_ms(&Quantity::Int(i64::MIN))).contains("negative"));
        assert!(err(parse_duration_ms(&s("s"))).contains("does not start with a number"));
        assert!(err(parse_duration_ms(&s("1..5s"))).contains("does not start with a number"));
    }

    #[test]
    fn extreme_floats_display_short() {
        assert_eq!(Quantity::Float(1e300).to_string(), "1e300");
        assert_eq!(Quantity::Float(1.5).to_string(), "1.5");
        assert_eq!(Quantity::Float(f64::INFINITY).to_string(), "inf");
    }

    /// Arbitrary numbers and strings never panic a parser (debug builds check overflow), and
    /// what they accept is within the bounds the callers rely on.
    mod never_panic {
        use proptest::prelude::*;

        use super::super::*;

        fn quantity() -> impl Strategy<Value = Quantity> {
            prop_oneof![
                any::<i64>().prop_map(Quantity::Int),
                any::<f64>().prop_map(Quantity::Float),
                prop_oneof![Just(f64::INFINITY), Just(f64::NAN), Just(1e300), Just(-0.0)]
                    .prop_map(Quantity::Float),
                // Numbers with units, the shapes the parsers look for.
                (
                    "[0-9]{0,25}(\\.[0-9]{0,25})?",
                    "(|%| |B|k|KiB|MB|GiB|t|TiB|ms|s|m|min|h|x|e9|0o)"
                )
                    .prop_map(|(n, u)| Quantity::Str(format!("{n}{u}"))),
                "\\PC{0,30}".prop_map(Quantity::Str),
            ]
        }

        proptest! {
            #[test]
            fn unit_parsers(q in quantity()) {
                if let Ok(v) = parse_size(&q) {
                    prop_assert!(v <= MAX_SIZE);
                }
                if let Ok(c) = parse_cpu(&q) {
                    prop_assert!(c.quota_us <= MAX_QUOTA_US);
                }
                if let Ok(m) = parse_mode(&q) {
                    prop_assert!(m <= 0o7777);
                }
                let _ = parse_rlimit_value(&q);
                let _ = parse_duration_ms(&q);
                let _ = q.to_string();
            }

            #[test]
            fn whole_sizes_are_exact(n in 0u64..=MAX_SIZE, unit in 0usize..SIZE_SUFFIXES.len()) {
                let (name, mult) = SIZE_SUFFIXES[unit];
                let q = Quantity::Str(format!("{n}{name}"));
                match n.checked_mul(mult).filter(|b| *b <= MAX_SIZE) {
                    Some(b) => prop_assert_eq!(parse_size(&q), Ok(b)),
                    None => prop_assert!(parse_size(&q).is_err()),
                }
            }

            #[test]
            fn human_size_any(b in any::<u64>()) {
                let _ = human_size(b);
            }
        }
    }

    #[test]
    fn human() {
        assert_eq!(human_size(64 << 20), "64 MiB");
        assert_eq!(human_size(3 << 29), "1.50 GiB");
        assert_eq!(human_size(10), "10 B");
    }
}
