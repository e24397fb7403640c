//! XML canonicalization (C14N 1.0 and exclusive C14N 1.0, with and without comments) over the
//! same document tree the edXML model is read from, for XML-DSig verification of packages.

pub mod c14n;

pub use c14n::{Algorithm, canonicalize};
