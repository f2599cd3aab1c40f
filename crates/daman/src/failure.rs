//! How a command fails, and the exit code each failure gives (README: exit codes).

use kernel::AppError;

pub(crate) enum Failure {
    Config(String),
    Run(String),
    /// Some imported files were rejected (exit code 4).
    Rejected(usize),
    /// The audit log or a proof does not verify (exit code 5).
    Tampered(String),
}

impl From<AppError> for Failure {
    fn from(e: AppError) -> Self {
        let detail = match &e {
            AppError::Invalid(v) => v
                .iter()
                .map(|x| x.message(domain::Lang::En))
                .collect::<Vec<_>>()
                .join("; "),
            e => {
                // The whole chain of causes (database and I/O errors carry no values).
                let mut parts = Vec::new();
                let mut cause = std::error::Error::source(e);
                while let Some(c) = cause {
                    parts.push(c.to_string());
                    cause = c.source();
                }
                parts.join(": ")
            }
        };
        Failure::Run(if detail.is_empty() {
            e.to_string()
        } else {
            format!("{e}: {detail}")
        })
    }
}

impl From<store::StoreError> for Failure {
    fn from(e: store::StoreError) -> Self {
        Failure::Run(match std::error::Error::source(&e) {
            Some(s) => format!("{e}: {s}"),
            None => e.to_string(),
        })
    }
}
