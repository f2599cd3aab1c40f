//! The registry: employers affiliated and persons immatriculated, employment links, contact
//! data, cases; and what the audit log tells about the registry's persons: the breach-impact
//! report, the four-eyes release of contact data for notifications, and "who read my data".
//! Every command is audited before it changes anything; personal fields are read only
//! through the kernel's gate.

mod accesses;
mod breach;
mod claims;
mod decoys;
mod input;
mod registry;
mod release;

pub use accesses::{ACCESS_PAGE_MAX, Access, AccessPage};
pub use breach::{BreachReport, ExposedPerson, Investigator};
pub use claims::{CLAIM_PAGE_MAX, ClaimOutcome, ClaimView, Verdict};
pub use input::{ContactChange, EmployerCreated, NewEmployer, NewPerson, PersonCreated};
pub use registry::Linked;
pub use release::{Contact, ContactRelease, RELEASE_APPROVAL_HOURS};

use kernel::Kernel;

/// The registry service over the kernel.
#[derive(Clone)]
pub struct Registry {
    pub(crate) k: Kernel,
}

impl Registry {
    pub fn new(k: Kernel) -> Registry {
        Registry { k }
    }
}
