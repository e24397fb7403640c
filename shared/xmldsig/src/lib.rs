//! XML-DSig for edXML packages: canonicalization (C14N 1.0 and exclusive C14N 1.0, with and
//! without comments) over the same document tree the edXML model is read from, and enveloped
//! signature verification.

pub mod c14n;
mod der;
pub mod revocation;
pub mod sign;
pub mod trust;
pub mod verdict;
pub mod verify;

pub use c14n::{Algorithm, Sink, canonicalize, canonicalize_into};
pub use sign::{SignError, sign};
pub use trust::{ChainFailure, ChainReport, Expiry, ExpiryKind, Policy, TrustStore};
pub use verdict::{
    Outcome, Verdict, check_package, check_package_source, check_package_source_keeping_tree,
};
pub use verify::{DigestMethod, Failure, SignatureMethod, Verified, verify};
