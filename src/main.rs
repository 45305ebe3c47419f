fn main() -> std::process::ExitCode {
    ftpswarm::cli::main()
}
