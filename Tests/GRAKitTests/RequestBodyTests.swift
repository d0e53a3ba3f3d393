import Testing

@testable import GRAKit

#if canImport(Glibc)
import Glibc
#endif

@Suite("Request bodies")
struct RequestBodyTests {
    @Test func bodyIsModelMessagesParametersThenFormat() throws {
        let model = ModelEndpoint(name: "m\"1", baseURLs: ["http://h/v1"], apiKeyVariable: "OPENAI_API_KEY")
        let messages: [JSONValue] = [
            .object(["role": .string("system"), "content": .string("be brief\n")]),
            .object(["role": .string("user"), "content": .string("héllo \u{1} \"q\"")])
        ]
        let schema = try JSONSchema(
            JSONParser.parse(#"{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]}"#))
        let messagesText = #"[{"role":"system","content":"be brief\n"},{"role":"user","content":"héllo \u0001 \"q\""}]"#
        for (request, expected) in [
            (ChatRequest(model: model, messages: messages), #"{"model":"m\"1","messages":"# + messagesText + "}"),
            (
                ChatRequest(
                    model: model, messages: messages,
                    parameters: ["temperature": .number("0.7"), "stop": .array([.string("\n")])],
                    responseFormat: ChatRequest.jsonSchemaFormat(name: "x", schema: schema)),
                #"{"model":"m\"1","messages":"# + messagesText
                    + #"""
                    ,"temperature":0.7,"stop":["\n"],"response_format":{"type":"json_schema",\#
                    "json_schema":{"name":"x","schema":{"type":"object","properties":{"a":{"type":"integer"}},\#
                    "required":["a"]},"strict":true}}}
                    """#
            )
        ] {
            let written = ByteBuffer(capacity: 16)
            request.writeBody(to: written)
            #expect(String(decoding: written.bytes, as: UTF8.self) == expected)
        }
    }
}
