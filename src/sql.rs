//! Every SQL statement Octavia runs, one per file in `sql/`, embedded at compile time.
//! A test prepares each of them against the migrated schema.

macro_rules! statements {
    ($($name:ident => $file:literal,)*) => {
        $(
            #[doc = concat!("`sql/", $file, "`")]
            pub const $name: &str = include_str!(concat!("../sql/", $file));
        )*
        /// (file name, statement) of every file in `sql/`.
        pub const ALL: &[(&str, &str)] = &[$(($file, $name)),*];
    };
}

statements! {
    TABLE_ROWS => "table_rows.sql",
}
