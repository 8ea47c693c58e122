//! The one integration-test binary (one link on a small machine). Each module is a theme.

mod it;
