/// The version every gra tool reports with `--version`.
public enum GRAVersion {
    public static let string = "0.5.0"
}
