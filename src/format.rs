//! What `-o` names: the output formats, and `jsonpath=`'s template.

/// The output formats of `-o`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// Aligned columns for people.
    Table,
    /// The table with more columns (audit list: REQUEST ID).
    Wide,
    Json,
    #[value(alias = "yml")]
    Yaml,
    Csv,
    /// dotenv lines (`secrets get --value`), readable by --from-env-file.
    Env,
    /// One JSON object per line (`audit list`: one event per line, for log
    /// shippers).
    Jsonl,
    /// OCSF API Activity events, one per line (`audit list`, for SIEMs).
    Ocsf,
    /// Kubernetes Secret manifests (`secrets export`).
    #[value(name = "k8s")]
    K8s,
    /// `jsonpath=TEMPLATE`: kubectl's template over the JSON document.
    #[value(skip)]
    JsonPath,
}

/// `-o`'s value: a format, and `jsonpath=`'s template; or, for the one
/// verb whose `-o` names a file (`secrets inject`, as `op inject -o`), the
/// file.
#[derive(Clone, Debug)]
pub struct OutputArg {
    pub format: OutputFormat,
    pub jsonpath: Option<String>,
    pub file: Option<std::path::PathBuf>,
}

/// Parses `-o`: a format name (any case), or `jsonpath=TEMPLATE`.
#[derive(Clone)]
pub struct OutputParser;

impl clap::builder::TypedValueParser for OutputParser {
    type Value = OutputArg;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> std::result::Result<OutputArg, clap::Error> {
        let text = value.to_string_lossy();
        if let Some(t) = text.strip_prefix("jsonpath=") {
            if t.is_empty() {
                return Err(clap::Error::raw(
                    clap::error::ErrorKind::InvalidValue,
                    "-o jsonpath= needs a template, e.g. -o jsonpath='{.name}'\n",
                ));
            }
            return Ok(OutputArg {
                format: OutputFormat::JsonPath,
                jsonpath: Some(t.to_string()),
                file: None,
            });
        }
        let format = clap::builder::EnumValueParser::<OutputFormat>::new().parse_ref(
            cmd,
            arg,
            &std::ffi::OsString::from(text.to_lowercase()),
        )?;
        Ok(OutputArg {
            format,
            jsonpath: None,
            file: None,
        })
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        use clap::ValueEnum;
        Some(Box::new(
            OutputFormat::value_variants()
                .iter()
                .filter_map(ValueEnum::to_possible_value)
                .chain(std::iter::once(
                    clap::builder::PossibleValue::new("jsonpath=TEMPLATE")
                        .help("kubectl's template over the JSON document"),
                )),
        ))
    }
}

/// Parses a verb's `-o FILE` (`secrets inject`). It shares `-o`'s id with
/// the global format flag (clap then does not add the global one to that
/// verb), so it yields the same type: the table format and the file.
#[derive(Clone)]
pub struct OutputFileParser;

impl clap::builder::TypedValueParser for OutputFileParser {
    type Value = OutputArg;

    fn parse_ref(
        &self,
        _cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> std::result::Result<OutputArg, clap::Error> {
        if value.is_empty() {
            return Err(clap::Error::raw(
                clap::error::ErrorKind::InvalidValue,
                "-o needs a file name (leave -o out to write to stdout)\n",
            ));
        }
        Ok(OutputArg {
            format: OutputFormat::Table,
            jsonpath: None,
            file: Some(value.into()),
        })
    }
}
