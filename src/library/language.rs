//! Language tags as clients want them: ISO 639-1 (`en`) where the language
//! has a two-letter code, which is what HLS `LANGUAGE` (RFC 8216 §4.3.4.1,
//! RFC 5646) and browsers' `Intl.DisplayNames` expect. Files tag tracks
//! with ISO 639-2 codes, bibliographic (`fre`, Matroska's convention) or
//! terminological (`fra`), or with 639-1 already. Pure.

/// ISO 639-2/B codes that differ from their /T twin (the /T codes are
/// ISO 639-3 codes, which [`isolang`] knows). Source: the Library of
/// Congress ISO 639-2 code list.
const BIBLIOGRAPHIC: &[(&str, &str)] = &[
    ("alb", "sqi"),
    ("arm", "hye"),
    ("baq", "eus"),
    ("bur", "mya"),
    ("chi", "zho"),
    ("cze", "ces"),
    ("dut", "nld"),
    ("fre", "fra"),
    ("geo", "kat"),
    ("ger", "deu"),
    ("gre", "ell"),
    ("ice", "isl"),
    ("mac", "mkd"),
    ("mao", "mri"),
    ("may", "msa"),
    ("per", "fas"),
    ("rum", "ron"),
    ("slo", "slk"),
    ("tib", "bod"),
    ("wel", "cym"),
];

/// The tag for `raw` (`fre`, `fra`, `FR`, `en-US`): its ISO 639-1 code
/// where it has one, else the ISO 639-2/3 code lower-cased; `None` for
/// what is not a language (`und`, `zxx`, `mis`, `mul`, empty, or not 2–3
/// letters).
pub fn normalize(raw: &str) -> Option<String> {
    let primary = raw.trim().split(['-', '_']).next()?.to_ascii_lowercase();
    if !(2..=3).contains(&primary.len()) || !primary.bytes().all(|b| b.is_ascii_lowercase()) {
        return None;
    }
    if matches!(primary.as_str(), "und" | "zxx" | "mis" | "mul") {
        return None;
    }
    if primary.len() == 2 {
        return isolang::Language::from_639_1(&primary).map(|_| primary);
    }
    let terminological = BIBLIOGRAPHIC
        .iter()
        .find(|(b, _)| *b == primary)
        .map_or(primary.as_str(), |(_, t)| t);
    isolang::Language::from_639_3(terminological).map(|l| {
        l.to_639_1()
            .map_or(terminological.to_string(), str::to_string)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_letter_codes_become_two_letter_ones() {
        assert_eq!(normalize("fre").as_deref(), Some("fr"));
        assert_eq!(normalize("fra").as_deref(), Some("fr"));
        assert_eq!(normalize("ger").as_deref(), Some("de"));
        assert_eq!(normalize("eng").as_deref(), Some("en"));
        assert_eq!(normalize("spa").as_deref(), Some("es"));
        assert_eq!(normalize("cze").as_deref(), Some("cs"));
        assert_eq!(normalize("EN").as_deref(), Some("en"));
        assert_eq!(normalize("pt-BR").as_deref(), Some("pt"));
    }

    #[test]
    fn codes_without_a_two_letter_form_stay_and_non_languages_go() {
        assert_eq!(normalize("gsw").as_deref(), Some("gsw"));
        assert_eq!(normalize("und"), None);
        assert_eq!(normalize("english"), None);
        assert_eq!(normalize("xx"), None);
        assert_eq!(normalize("e\"n"), None);
        assert_eq!(normalize(""), None);
        assert_eq!(normalize("forced"), None);
    }
}
