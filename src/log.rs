//! The structured log: one JSON line per event on the Worker's log, `{"level", "ts", …fields}`.

use worker::Date;

/// One structured JSON line on the Worker's log.
pub fn log(level: &str, fields: &serde_json::Value) {
    let mut line = serde_json::json!({ "level": level, "ts": Date::now().as_millis() });
    if let (Some(line), Some(fields)) = (line.as_object_mut(), fields.as_object()) {
        line.extend(fields.clone());
    }
    worker::console_log!("{line}");
}
