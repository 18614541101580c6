//! luavirt's Xen driver (`libxl:///FOLDER`).

pub mod cfg;
pub mod diskspec;
