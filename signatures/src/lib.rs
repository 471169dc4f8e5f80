//! Commit signatures: which keys may sign the watched branch, and whether a
//! commit was signed by one of them.
