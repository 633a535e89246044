//! The two languages of messages and emails. Spanish is the default: the
//! users are Colombian.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// Español (default).
    #[default]
    Es,
    /// English.
    En,
}

impl Lang {
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Es => "es",
            Lang::En => "en",
        }
    }

    pub fn from_stored(s: &str) -> Lang {
        if s == "en" { Lang::En } else { Lang::Es }
    }

    /// `es`/`en` (any case, also `español`/`english`), for imports.
    pub fn parse(s: &str) -> Option<Lang> {
        match s.trim().to_lowercase().as_str() {
            "es" | "español" | "espanol" | "spanish" => Some(Lang::Es),
            "en" | "english" | "inglés" | "ingles" => Some(Lang::En),
            _ => None,
        }
    }

    /// From a locale string such as `en_US.UTF-8`: English only when it says
    /// English, Spanish otherwise.
    pub fn from_locale(s: &str) -> Lang {
        let s = s.trim().to_ascii_lowercase();
        if s.starts_with("en") {
            Lang::En
        } else {
            Lang::Es
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locale_detection() {
        assert_eq!(Lang::from_locale("en_US.UTF-8"), Lang::En);
        assert_eq!(Lang::from_locale("es_CO.UTF-8"), Lang::Es);
        assert_eq!(Lang::from_locale("C"), Lang::Es);
        assert_eq!(Lang::from_locale("fr_FR"), Lang::Es);
    }

    #[test]
    fn parse_and_store() {
        assert_eq!(Lang::parse(" EN "), Some(Lang::En));
        assert_eq!(Lang::parse("Español"), Some(Lang::Es));
        assert_eq!(Lang::parse("fr"), None);
        assert_eq!(Lang::from_stored("en"), Lang::En);
        assert_eq!(Lang::from_stored("??"), Lang::Es);
    }
}
