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
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Quantity, E> {
                i64::try_from(v)
                    .map(Quantity::Int)
                    .map_err(|_| E::custom("number too large"))
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
/// kernel's own `memparse` read "1G": a limit written `1G` is 1073741824 bytes.
const SIZE_SUFFIXES: &[(&str, u64)] = &[
    ("", 1),
    ("b", 1),
    ("k", 1 << 10),
    ("kb", 1 << 10),
    ("kib", 1 << 10),
    ("m", 1 << 20),
    ("mb", 1 << 20),
    ("mib", 1 << 20),
    ("g", 1 << 30),
    ("gb", 1 << 30),
    ("gib", 1 << 30),
    ("t", 1 << 40),
    ("tb", 1 << 40),
    ("tib", 1 << 40),
];

/// Split `"1.5GiB"` into `("1.5", "GiB")`.
fn split_number(s: &str) -> (&str, &str) {
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    (&s[..end], s[end..].trim())
}

/// A size in bytes: an integer, or a string like `"512MiB"`, `"1G"`, `"1.5GiB"`.
pub fn parse_size(q: &Quantity) -> Result<u64, String> {
    match q {
        Quantity::Int(i) if *i >= 0 => Ok(*i as u64),
        Quantity::Int(_) => Err("a size cannot be negative".into()),
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
            let value: f64 = num
                .parse()
                .map_err(|_| format!("`{num}` is not a number"))?;
            let bytes = value * mult as f64;
            if !bytes.is_finite() || bytes > u64::MAX as f64 / 2.0 {
                return Err(format!("`{s}` is too large"));
            }
            Ok(bytes.floor() as u64)
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

/// CPU as `"30%"` (of one CPU), a number of CPUs (`1.5`, `2`, `"0.5"`).
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
            } else {
                s.parse()
                    .map_err(|_| format!("`{s}` is neither a percentage nor a number of CPUs"))?
            }
        }
    };
    if !cpus.is_finite() || cpus <= 0.0 {
        return Err("CPU must be more than zero".into());
    }
    let quota_us = (cpus * CPU_PERIOD_US as f64).round() as u64;
    Ok(CpuQuota {
        quota_us,
        period_us: CPU_PERIOD_US,
    })
}

/// A file mode: octal string (`"1777"`, `"0755"`) or integer (`0o1777`).
pub fn parse_mode(q: &Quantity) -> Result<u32, String> {
    let mode = match q {
        Quantity::Int(i) => {
            u32::try_from(*i).map_err(|_| "a mode cannot be negative".to_string())?
        }
        Quantity::Float(_) => return Err("a mode is an octal number like \"1777\"".into()),
        Quantity::Str(s) => {
            let t = s.trim().trim_start_matches("0o");
            u32::from_str_radix(t, 8).map_err(|_| format!("`{s}` is not an octal mode"))?
        }
    };
    if mode > 0o7777 {
        return Err(format!("mode {mode:o} is more than 7777"));
    }
    Ok(mode)
}

/// An rlimit value: a non-negative integer, or `"unlimited"` / `"infinity"` (RLIM_INFINITY).
pub fn parse_rlimit_value(q: &Quantity) -> Result<Option<u64>, String> {
    match q {
        Quantity::Int(i) if *i >= 0 => Ok(Some(*i as u64)),
        Quantity::Int(_) => Err("a limit cannot be negative".into()),
        Quantity::Float(_) => Err("a limit is a whole number".into()),
        Quantity::Str(s) if s == "unlimited" || s == "infinity" => Ok(None),
        Quantity::Str(s) => Err(format!("`{s}` is neither a number nor \"unlimited\"")),
    }
}

/// A duration in milliseconds: `"10s"`, `"500ms"`, `"1m"`, `"1.5s"`, or an integer of seconds.
pub fn parse_duration_ms(q: &Quantity) -> Result<u64, String> {
    match q {
        Quantity::Int(i) if *i >= 0 => Ok(*i as u64 * 1000),
        Quantity::Int(_) => Err("a duration cannot be negative".into()),
        Quantity::Float(x) if *x >= 0.0 && x.is_finite() => Ok((x * 1000.0).round() as u64),
        Quantity::Float(_) => Err("a duration cannot be negative".into()),
        Quantity::Str(s) => {
            let s = s.trim();
            let (num, unit) = split_number(s);
            let mult = match unit {
                "ms" => 1.0,
                "s" | "" => 1000.0,
                "m" | "min" => 60_000.0,
                "h" => 3_600_000.0,
                other => return Err(format!("unknown duration unit `{other}`")),
            };
            let v: f64 = num
                .parse()
                .map_err(|_| format!("`{s}` does not start with a number"))?;
            Ok((v * mult).round() as u64)
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

    #[test]
    fn human() {
        assert_eq!(human_size(64 << 20), "64 MiB");
        assert_eq!(human_size(3 << 29), "1.50 GiB");
        assert_eq!(human_size(10), "10 B");
    }
}
