use super::*;

// The profile, as the manifest stores it (a JSON value, so old and new profiles both read)

pub(super) fn value_at<'a>(v: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(v, |v, key| v.get(key))
}

/// A scalar as text; null (an unset optional) and containers are "not recorded".
pub(super) fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

pub(super) fn scalar_at(v: &Value, dotted: &str) -> Option<String> {
    value_at(v, dotted).and_then(scalar)
}

pub(super) fn think_time(p: &Value) -> Option<String> {
    let min = scalar_at(p, "session.think_time")?;
    Some(match scalar_at(p, "session.think_time_max") {
        Some(max) => format!("{min} to {max} (uniform)"),
        None => min,
    })
}

pub(super) fn mix(p: &Value) -> Option<String> {
    value_at(p, "mix")?;
    let parts: Vec<String> = COMMANDS
        .iter()
        .map(|c| {
            let w = scalar_at(p, &format!("mix.{}", c.to_lowercase()));
            format!("{c} {}", w.as_deref().unwrap_or(DASH))
        })
        .collect();
    Some(parts.join(", "))
}

/// The size distribution in words; sizes are stored as byte counts and shown as the profile
/// would write them (KiB, MiB).
pub(super) fn file_size(p: &Value) -> Option<String> {
    let fs = value_at(p, "file_size")?;
    let dist = fs.get("distribution").and_then(Value::as_str)?;
    let bytes = |key: &str| {
        fs.get(key)
            .and_then(Value::as_u64)
            .map_or_else(|| DASH.to_string(), |b| ByteCount(b).to_string())
    };
    Some(match dist {
        "fixed" => format!("fixed, {}", bytes("bytes")),
        "uniform" => format!("uniform, {} to {}", bytes("min"), bytes("max")),
        "lognormal" => format!(
            "lognormal, median {}, σ {}, max {}",
            bytes("median"),
            fs.get("sigma").and_then(scalar).as_deref().unwrap_or(DASH),
            bytes("max")
        ),
        // A distribution this report does not know: its parameters as stored.
        other => {
            let params: Vec<String> = fs
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| k.as_str() != "distribution")
                .map(|(k, v)| format!("{k} {}", scalar(v).as_deref().unwrap_or(DASH)))
                .collect();
            if params.is_empty() {
                other.to_string()
            } else {
                format!("{other}, {}", params.join(", "))
            }
        }
    })
}
