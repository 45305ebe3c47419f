//! The passive port range: what every part of ftpswarm talks about, so it stands on its own
//! at the bottom of the crate.

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// An inclusive TCP port range, written `"30000-30099"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub min: u16,
    pub max: u16,
}

impl PortRange {
    pub fn width(&self) -> u32 {
        u32::from(self.max) - u32::from(self.min) + 1
    }
    pub fn contains(&self, port: u16) -> bool {
        (self.min..=self.max).contains(&port)
    }
}

impl FromStr for PortRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let hint = "write it like \"30000-30099\" (first-last, inclusive, 1-65535)";
        let (a, b) = s
            .trim()
            .split_once('-')
            .ok_or_else(|| format!("{s:?} is not a port range; {hint}"))?;
        let min: u16 = a.trim().parse().map_err(|_| format!("{a:?} is not a port; {hint}"))?;
        let max: u16 = b.trim().parse().map_err(|_| format!("{b:?} is not a port; {hint}"))?;
        if min == 0 || min > max {
            return Err(format!("{s:?} is empty or starts at 0; {hint}"));
        }
        Ok(PortRange { min, max })
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.min, self.max)
    }
}

impl Serialize for PortRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

impl schemars::JsonSchema for PortRange {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PortRange".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[0-9]{1,5}-[0-9]{1,5}$",
            "description": "An inclusive TCP port range, first-last, e.g. \"30000-30099\"."
        })
    }
}
