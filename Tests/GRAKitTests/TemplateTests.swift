import Testing

@testable import GRAKit

#if canImport(Glibc)
import Glibc
#endif

@Suite("Prompt templates")
struct TemplateTests {
    let record = try! JSONParser.parse(
        #"""
        {"instruction":"Add","input":"","n":3,"big":12345678901234567890,"tags":["a","b"],"meta":{"lang":"fr",\#
        "ok":true},"shots":[{"q":"1+1","a":"2"},{"q":"2+2","a":"4"}]}
        """#
    )

    func render(_ t: String) throws -> (String, [String]) {
        var missing: [String] = []
        let out = try PromptTemplate(t).render(record, missing: &missing)
        return (out, missing)
    }

    @Test func variablesAndPaths() throws {
        #expect(
            try render("{{instruction}} {{n}} {{big}} {{meta.lang}} {{{instruction}}} {{& meta.lang }}").0
                == "Add 3 12345678901234567890 fr Add fr")
        #expect(try render("{{tags}}|{{meta}}").0 == #"["a","b"]|{"lang":"fr","ok":true}"#)
    }

    @Test func sectionsIterateAndInvertedSectionsTestEmptiness() throws {
        let t = """
            Examples:
            {{#shots}}
            Q: {{q}} A: {{a}}
            {{/shots}}
            {{#input}}Input: {{input}}{{/input}}{{^input}}(no input){{/input}}
            {{#meta}}lang={{lang}} instr={{instruction}}{{/meta}}
            """
        #expect(try render(t).0 == "Examples:\nQ: 1+1 A: 2\nQ: 2+2 A: 4\n(no input)\nlang=fr instr=Add")
        // "." is the innermost section's value; outside every section, the record itself.
        #expect(try render("{{#tags}}<{{.}}>{{/tags}}").0 == "<a><b>")
        #expect(try render("{{#meta}}{{#tags}}{{lang}}:{{.}} {{/tags}}{{/meta}}").0 == "fr:a fr:b ")
        #expect(try render("{{.}}").0.hasPrefix(#"{""#))
    }

    @Test func missingVariablesAreReportedNotSilentlyEmpty() throws {
        let (out, missing) = try render("{{instruction}} {{respnse}} {{meta.nope}}")
        #expect(out == "Add  ")
        #expect(missing == ["respnse", "meta.nope"])
        // A missing section is simply false.
        #expect(try render("{{#nothing}}x{{/nothing}}y").1.isEmpty)
    }

    @Test(arguments: [
        ("{{#a}}x", "never closed"), ("{{/a}}", "closes no open section"), ("{{#a}}{{/b}}", "was expected"),
        ("{{x", "unclosed tag"), ("{{> partial}}", "not supported")
    ])
    func badTemplatesSayWhere(_ t: String, _ fragment: String) {
        do {
            _ = try PromptTemplate(t)
            Issue.record("accepted \(t)")
        } catch {
            #expect(error.description.contains(fragment), "\(error)")
        }
    }

    @Test func versionChangesWithTheText() throws {
        #expect(try PromptTemplate("a").version != PromptTemplate("b").version)
        #expect(try PromptTemplate("a").version == PromptTemplate("a").version)
    }
}
