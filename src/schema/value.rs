//! The text form of parameter values: what the command line reads, the Python package writes, and the
//! docs print. One parser per type, so a value means the same at every edge.

use std::path::PathBuf;

/// A type a parameter can have, with its text form.
pub trait ParamValue: Sized + Clone {
    /// The type in words, for help and docs.
    const TYPE_NAME: &'static str;

    /// The value written as `text`, or why it is not one.
    fn parse(text: &str) -> Result<Self, String>;

    /// The canonical text (parses back to the same value).
    fn text(&self) -> String;

    /// The text of a default (`None`: the parameter has no default).
    fn default_text(&self) -> Option<String> {
        Some(self.text())
    }

    /// The names of a choice's values.
    fn choices() -> Option<&'static [&'static str]> {
        None
    }

    /// The values in words, for help and docs: a choice's names, or a grammar.
    fn values() -> Option<String> {
        Self::choices().map(|names| format!("one of: {}", names.join(", ")))
    }
}

impl ParamValue for f64 {
    const TYPE_NAME: &'static str = "number";

    fn parse(text: &str) -> Result<Self, String> {
        text.trim().parse().map_err(|_| "must be a number".to_string())
    }

    fn text(&self) -> String {
        // The shortest text that parses back to the same value (`Display` of f64), `NaN` as Python writes it.
        if self.is_nan() {
            "NaN".into()
        } else {
            self.to_string()
        }
    }
}

macro_rules! whole_number {
    ($($ty:ty),*) => {$(
        impl ParamValue for $ty {
            const TYPE_NAME: &'static str = "integer";

            fn parse(text: &str) -> Result<Self, String> {
                text.trim().parse().map_err(|_| "must be a whole number >= 0".to_string())
            }

            fn text(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
whole_number!(usize, u64);

impl ParamValue for bool {
    const TYPE_NAME: &'static str = "switch";

    fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "true" | "True" | "1" => Ok(true),
            "false" | "False" | "0" => Ok(false),
            _ => Err("must be true or false".into()),
        }
    }

    fn text(&self) -> String {
        self.to_string()
    }
}

impl ParamValue for String {
    const TYPE_NAME: &'static str = "text";

    fn parse(text: &str) -> Result<Self, String> {
        Ok(text.to_string())
    }

    fn text(&self) -> String {
        self.clone()
    }
}

impl ParamValue for char {
    const TYPE_NAME: &'static str = "character";

    fn parse(text: &str) -> Result<Self, String> {
        let mut chars = text.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => Ok(c),
            _ => Err("must be a single character".into()),
        }
    }

    fn text(&self) -> String {
        self.to_string()
    }
}

impl ParamValue for PathBuf {
    const TYPE_NAME: &'static str = "path";

    fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("must not be empty".into());
        }
        Ok(PathBuf::from(text))
    }

    fn text(&self) -> String {
        self.display().to_string()
    }
}

/// A comma-separated list.
impl<T: ParamValue + ListItem> ParamValue for Vec<T> {
    const TYPE_NAME: &'static str = T::LIST_NAME;

    fn parse(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Ok(Vec::new());
        }
        text.split(',').map(|item| T::parse(item.trim())).collect()
    }

    fn text(&self) -> String {
        self.iter().map(T::text).collect::<Vec<_>>().join(",")
    }
}

/// A type that may be an item of a comma-separated list.
pub trait ListItem {
    /// The list's type in words.
    const LIST_NAME: &'static str;
}

impl ListItem for usize {
    const LIST_NAME: &'static str = "list of integers";
}
impl ListItem for u64 {
    const LIST_NAME: &'static str = "list of integers";
}
impl ListItem for f64 {
    const LIST_NAME: &'static str = "list of numbers";
}
impl ListItem for String {
    const LIST_NAME: &'static str = "list of names";
}
impl ListItem for PathBuf {
    const LIST_NAME: &'static str = "list of paths";
}

/// A value that may be absent (no default).
impl<T: ParamValue> ParamValue for Option<T> {
    const TYPE_NAME: &'static str = T::TYPE_NAME;

    fn parse(text: &str) -> Result<Self, String> {
        T::parse(text).map(Some)
    }

    fn text(&self) -> String {
        self.as_ref().map(T::text).unwrap_or_default()
    }

    fn default_text(&self) -> Option<String> {
        self.as_ref().map(T::text)
    }

    fn choices() -> Option<&'static [&'static str]> {
        T::choices()
    }

    fn values() -> Option<String> {
        T::values()
    }
}

impl ParamValue for crate::penalty::PenaltySpec {
    const TYPE_NAME: &'static str = "penalty";

    fn values() -> Option<String> {
        use crate::penalty::{Estimate, PenaltyKind, Target};
        Some(format!(
            "KIND one of: {}; TARGET one of: {}; ESTIMATE one of: {} (default: batch for parity, bank for odds)",
            PenaltyKind::NAMES.join(", "),
            Target::NAMES.join(", "),
            Estimate::NAMES.join(", ")
        ))
    }

    fn parse(text: &str) -> Result<Self, String> {
        text.trim().parse().map_err(|e: crate::Error| e.into_reason())
    }

    fn text(&self) -> String {
        self.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_parse_back_to_the_same_value() {
        for v in [0.0, 1e-3, 0.95, 8.0, 1e30, -2.5] {
            assert_eq!(f64::parse(&v.text()).unwrap(), v);
        }
        assert!(f64::parse(&f64::NAN.text()).unwrap().is_nan());
        assert_eq!(Vec::<usize>::parse("64, 12").unwrap(), vec![64, 12]);
        assert_eq!(vec![64usize, 12].text(), "64,12");
        assert_eq!(Vec::<usize>::parse("").unwrap(), Vec::<usize>::new());
        assert!(Vec::<usize>::parse("64,x").is_err());
        assert!(usize::parse("-1").is_err());
        assert!(char::parse(";;").is_err());
        assert_eq!(Option::<usize>::None.default_text(), None);
    }
}
