//! Text in e-BDS files: upper case without accents, from 38 characters (A–Z, 0–9, space, tab).
//!
//! [`transliterate`] is the one rule daman uses to turn a name or an address as people write it
//! (French with accents, Arabic script) into what the format allows:
//!
//! 1. Unicode NFKD, then every combining mark is dropped: `é` → `e`, `Ç` → `C`, and the Arabic
//!    short vowels (harakat) disappear.
//! 2. Letters with no decomposition: `ß` → `SS`, `Æ` → `AE`, `Œ` → `OE`, `Ø` → `O`, `Đ` → `D`,
//!    `Ł` → `L`, `Þ` → `TH`.
//! 3. Arabic letters follow the French-style romanisation used on Moroccan identity cards:
//!    ا أ إ آ ى ع ة → A, ب → B, ت ط → T, ث → T, ج → J, ح ه → H, خ → KH, د ض ذ ظ → D, ر → R,
//!    ز → Z, س ص → S, ش → CH, غ → GH, ف → F, ق ك → K, گ ڭ → G, ل → L, م → M, ن → N, و ؤ → OU,
//!    ي ئ → I, پ → P, ڤ → V; hamza and tatweel are dropped; Arabic-Indic digits become 0–9.
//! 4. Lower case becomes upper case; every other character (punctuation, `°`, apostrophes,
//!    hyphens) becomes a space; runs of spaces become one; the ends are trimmed.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Whether a byte may appear in an AN field.
pub fn allowed(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit() || b == b' ' || b == b'\t'
}

fn arabic(c: char) -> Option<&'static str> {
    Some(match c {
        'ا' | 'أ' | 'إ' | 'آ' | 'ى' | 'ع' | 'ة' | 'ٱ' => "A",
        'ب' => "B",
        'ت' | 'ط' | 'ث' => "T",
        'ج' => "J",
        'ح' | 'ه' => "H",
        'خ' => "KH",
        'د' | 'ض' | 'ذ' | 'ظ' => "D",
        'ر' => "R",
        'ز' => "Z",
        'س' | 'ص' => "S",
        'ش' => "CH",
        'غ' => "GH",
        'ف' => "F",
        'ق' | 'ك' | 'ک' => "K",
        'گ' | 'ڭ' => "G",
        'ل' => "L",
        'م' => "M",
        'ن' => "N",
        'و' | 'ؤ' => "OU",
        'ي' | 'ئ' | 'ی' => "I",
        'پ' => "P",
        'ڤ' => "V",
        'ء' | 'ـ' => "",
        '٠'..='٩' => {
            const D: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
            D[(c as u32 - '٠' as u32) as usize]
        }
        _ => return None,
    })
}

fn push(piece: &str, out: &mut String) {
    for c in piece.chars() {
        if c == ' ' {
            if !out.is_empty() && !out.ends_with(' ') {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
}

/// Turns free text into the e-BDS alphabet (the rule is in the module documentation).
pub fn transliterate(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.nfkd() {
        if is_combining_mark(c) {
            continue;
        }
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_uppercase());
            continue;
        }
        let piece = match c {
            'ß' => "SS",
            'æ' | 'Æ' => "AE",
            'œ' | 'Œ' => "OE",
            'ø' | 'Ø' => "O",
            'đ' | 'Đ' => "D",
            'ł' | 'Ł' => "L",
            'þ' | 'Þ' => "TH",
            _ => arabic(c).unwrap_or(" "),
        };
        push(piece, &mut out);
    }
    out.trim_end().to_string()
}

/// The text as it must be written: transliterated, then cut to `len` characters.
pub fn fit(s: &str, len: usize) -> String {
    let t = transliterate(s);
    t.chars()
        .take(len)
        .collect::<String>()
        .trim_end()
        .to_string()
}

/// Two names the same once written as the format writes them ([`transliterate`]: upper case,
/// one space between words); an empty name is nobody's.
pub fn same_name(a: &str, b: &str) -> bool {
    let (a, b) = (transliterate(a), transliterate(b));
    !a.is_empty() && a.split_whitespace().eq(b.split_whitespace())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn french_accents_and_punctuation() {
        assert_eq!(transliterate("Société Générale"), "SOCIETE GENERALE");
        assert_eq!(
            transliterate("N° 12, rue d'Agadir – Hay Riad"),
            "N 12 RUE D AGADIR HAY RIAD"
        );
        assert_eq!(transliterate("  Çœur  Straße "), "COEUR STRASSE");
        assert_eq!(transliterate("Aït-Ben-Haddou"), "AIT BEN HADDOU");
    }

    #[test]
    fn arabic_script() {
        assert_eq!(transliterate("محمد بناني"), "MHMD BNANI");
        assert_eq!(transliterate("شفشاون"), "CHFCHAOUN");
        assert_eq!(transliterate("خديجة"), "KHDIJA");
        assert_eq!(transliterate("رقم ١٢"), "RKM 12");
        // Short vowels are combining marks: dropped.
        assert_eq!(transliterate("مُحَمَّد"), "MHMD");
    }

    #[test]
    fn output_is_in_the_alphabet_and_fits() {
        for s in ["Ĳssel ☃ 東京", "abc\u{0}def", "إبراهيم الإدريسي"] {
            assert!(transliterate(s).bytes().all(allowed), "{s}");
        }
        assert_eq!(fit("Boulevard Mohammed V", 12), "BOULEVARD MO");
        assert_eq!(fit("ABCDEF GHI", 7), "ABCDEF");
    }
}
