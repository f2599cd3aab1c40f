//! The e-BDS file format of the CNSS (DAMANCOM): fixed-width records of 260 characters.
//!
//! - [`read_preetabli`], [`read_declaration`]: streaming readers that check every rule of the
//!   format and report **all** errors at once ([`EbdsError`]: line, record, field, value found,
//!   message in French, Arabic or English), and return either the whole typed file or nothing.
//! - [`preetabli_bytes`], [`declaration_bytes`] (and `write_*`): writers that compute every
//!   control sum and recap from typed lines and refuse a file their reader would not accept back
//!   identically.
//! - [`transliterate`]: the one rule turning accented or Arabic text into the format's alphabet.
//!
//! Layouts, rules and their sources: `docs/declarations.md` and cnss-domain.md §2.

mod error;
pub mod layout;
mod model;
mod read;
mod text;
mod write;

pub use error::{EbdsError, MAX_ERRORS, Problem};
pub use layout::{Family, RECORD_LEN, RecordType};
pub use model::*;
pub use read::{EbdsFile, read_declaration, read_file, read_preetabli};
pub use text::{allowed, fit, same_name, transliterate};
pub use write::{
    WriteError, declaration_bytes, preetabli_bytes, write_declaration, write_preetabli,
};

/// What the fuzz target runs: reads arbitrary bytes as any kind of file. Whatever it returns,
/// it must not panic, and a file it accepts must be written back byte for byte.
pub fn fuzz_read(data: &[u8]) {
    let params = domain::Parameters::morocco().ok();
    match read_file(data, params.as_ref(), &[Family::A, Family::B, Family::E]) {
        Ok(EbdsFile::Preetabli(p)) => {
            let again = preetabli_bytes(&p);
            assert!(again.as_deref() == Ok(data), "préétabli not written back");
        }
        Ok(EbdsFile::Declaration(d)) => {
            let again = declaration_bytes(&d, params.as_ref());
            assert!(again.as_deref() == Ok(data), "declaration not written back");
        }
        Err(errors) => assert!(!errors.is_empty()),
    }
}
