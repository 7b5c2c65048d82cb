fn main() {
    std::process::exit(kube_dc::main());
}
