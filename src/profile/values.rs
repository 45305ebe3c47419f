//! Value types a person writes in a profile: durations ("250ms"), sizes ("64KiB"), port
//! ranges ("30000-30099"), and the address lists sessions connect from.

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

pub use crate::port_range::PortRange;

/// A duration written as `"250ms"`, `"1m 30s"` (humantime syntax) or a number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub const ZERO: HumanDuration = HumanDuration(Duration::ZERO);
    pub const fn from_secs(s: u64) -> Self {
        HumanDuration(Duration::from_secs(s))
    }
}

impl FromStr for HumanDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if t == "0" {
            return Ok(HumanDuration::ZERO);
        }
        humantime::parse_duration(t)
            .map(HumanDuration)
            .map_err(|e| format!("{s:?} is not a duration ({e}); write it like \"500ms\", \"10s\" or \"2m\""))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as \"500ms\" or \"10s\", or a number of seconds")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<HumanDuration, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<HumanDuration, E> {
                Ok(HumanDuration::from_secs(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<HumanDuration, E> {
                u64::try_from(v)
                    .map(HumanDuration::from_secs)
                    .map_err(|_| E::custom(format!("{v} is negative; a duration must be 0 or more")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<HumanDuration, E> {
                Duration::try_from_secs_f64(v)
                    .map(HumanDuration)
                    .map_err(|_| E::custom(format!("{v} is not a valid number of seconds")))
            }
        }
        d.deserialize_any(V)
    }
}

/// A byte count written as `"64KiB"`, `"1.5 MB"` or a plain integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteCount(pub u64);

impl FromStr for ByteCount {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        bytesize::ByteSize::from_str(s.trim())
            .map(|b| ByteCount(b.as_u64()))
            .map_err(|e| format!("{s:?} is not a size ({e}); write it like \"512\", \"64KiB\" or \"10MB\""))
    }
}

impl fmt::Display for ByteCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", bytesize::ByteSize(self.0).display().iec())
    }
}

impl Serialize for ByteCount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for ByteCount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = ByteCount;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size such as \"64KiB\" or a number of bytes")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteCount, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteCount, E> {
                Ok(ByteCount(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteCount, E> {
                u64::try_from(v)
                    .map(ByteCount)
                    .map_err(|_| E::custom(format!("{v} is negative; a size must be 0 or more")))
            }
        }
        d.deserialize_any(V)
    }
}

/// Most addresses one `first-last` entry may expand to.
const MAX_SOURCE_ADDRESSES: usize = 65_536;

/// Expands `["127.0.0.1", "127.0.1.1-127.0.1.50"]` into the addresses sessions bind to.
pub fn expand_source_addresses(entries: &[String]) -> Result<Vec<IpAddr>, String> {
    let mut out = Vec::new();
    for e in entries {
        let e = e.trim();
        match e.split_once('-') {
            None => out.push(e.parse::<IpAddr>().map_err(|_| {
                format!("{e:?} is not an IP address; write \"127.0.0.2\" or a range \"127.0.1.1-127.0.1.50\"")
            })?),
            Some((a, b)) => {
                let (a, b) = (a.trim(), b.trim());
                let (std::net::IpAddr::V4(a4), std::net::IpAddr::V4(b4)) = (
                    a.parse::<IpAddr>()
                        .map_err(|_| format!("{a:?} is not an IPv4 address"))?,
                    b.parse::<IpAddr>()
                        .map_err(|_| format!("{b:?} is not an IPv4 address"))?,
                ) else {
                    return Err(format!("{e:?}: ranges are IPv4 only"));
                };
                let (lo, hi) = (u32::from(a4), u32::from(b4));
                if lo > hi || (hi - lo) as usize >= MAX_SOURCE_ADDRESSES {
                    return Err(format!("{e:?} is empty or wider than {MAX_SOURCE_ADDRESSES} addresses"));
                }
                out.extend((lo..=hi).map(|n| IpAddr::V4(n.into())));
            }
        }
    }
    Ok(out)
}

impl schemars::JsonSchema for HumanDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "HumanDuration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        // Written as text ("1m 30s"); a profile may also give a number of seconds.
        schemars::json_schema!({
            "anyOf": [{ "type": "string" }, { "type": "integer", "minimum": 0 }, { "type": "number", "minimum": 0 }],
            "description": "A duration such as \"500ms\" or \"1m 30s\", or a number of seconds."
        })
    }
}

impl schemars::JsonSchema for ByteCount {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ByteCount".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        // Written as a number of bytes; a profile may also say "64KiB".
        schemars::json_schema!({
            "anyOf": [{ "type": "integer", "minimum": 0 }, { "type": "string" }],
            "description": "A number of bytes, or a size such as \"64KiB\"."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!("250ms".parse::<HumanDuration>().unwrap().0, Duration::from_millis(250));
        assert_eq!("1m 30s".parse::<HumanDuration>().unwrap().0, Duration::from_secs(90));
        assert_eq!("0".parse::<HumanDuration>().unwrap(), HumanDuration::ZERO);
        assert!("ten seconds".parse::<HumanDuration>().is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!("64KiB".parse::<ByteCount>().unwrap().0, 65536);
        assert_eq!("1MB".parse::<ByteCount>().unwrap().0, 1_000_000);
        assert_eq!("512".parse::<ByteCount>().unwrap().0, 512);
        assert!("lots".parse::<ByteCount>().is_err());
    }

    #[test]
    fn port_ranges() {
        let r: PortRange = "30000-30099".parse().unwrap();
        assert_eq!((r.min, r.max, r.width()), (30000, 30099, 100));
        assert!(r.contains(30000) && r.contains(30099) && !r.contains(30100));
        for bad in ["30000", "0-10", "10-5", "a-b", "1-70000"] {
            assert!(bad.parse::<PortRange>().is_err(), "{bad}");
        }
    }

    #[test]
    fn source_addresses() {
        let v = expand_source_addresses(&["127.0.0.1".into(), "127.0.1.1-127.0.1.3".into()]).unwrap();
        assert_eq!(v.len(), 4);
        assert_eq!(v[3], "127.0.1.3".parse::<IpAddr>().unwrap());
        assert!(expand_source_addresses(&["127.0.1.3-127.0.1.1".into()]).is_err());
        assert!(expand_source_addresses(&["not-an-ip".into()]).is_err());
        assert!(expand_source_addresses(&["10.0.0.0-10.255.255.255".into()]).is_err());
    }
}
