//! Lists and sharing (docs/lists-and-sharing.md).

mod access;
mod basics;
mod convergence;
mod sharing;
