import MorpheusCore
import Testing

func parse(_ text: String, maxDepth: Int = 16) throws(JSONParser.Failure) -> (JSONValue, [JSONParser.StringProblem]) {
    var parser = JSONParser(bytes: Array(text.utf8), maxDepth: maxDepth)
    let value = try parser.parse()
    return (value, parser.stringProblems)
}

func failure(_ text: String) -> JSONParser.Failure? {
    do {
        _ = try parse(text)
        return nil
    } catch {
        return error
    }
}

@Suite("Strict JSON parser")
struct JSONParserTests {
    @Test("parses every JSON type, keeping member order")
    func parsesAllTypes() throws {
        let (value, problems) = try parse(#" {"b": [1, -2.5e3, true, false, null], "a": "x\u00e9\ud83c\udfa8\n", "c": {}} "#)
        #expect(problems.isEmpty)
        guard case .object(let members) = value else { Issue.record("not an object"); return }
        #expect(members.map(\.key) == ["b", "a", "c"])
        #expect(value["b"] == .array([.number(1), .number(-2500), .bool(true), .bool(false), .null]))
        #expect(value["a"] == .string("xé🎨\n"))
        #expect(value["c"] == .object([]))
    }

    @Test("refuses malformed documents", arguments: [
        "", "{", "[1,]", "{\"a\":1,}", "{'a':1}", "[01]", "[1.]", "[.5]", "[1e]", "[-]", "tru", "nul",
        "{\"a\" 1}", "[1 2]", "\"unterminated", "\"bad \\x escape\"", "\"\\u12G4\"", "[1] [2]",
        "\"raw\ttab\"", "NaN", "[Infinity]",
    ])
    func refusesMalformed(_ text: String) {
        #expect(failure(text)?.kind == .malformed)
    }

    @Test("refuses invalid UTF-8, overlong forms and a BOM")
    func refusesBadUTF8() {
        for bytes: [UInt8] in [[0x22, 0xC3, 0x28, 0x22], [0x22, 0xC0, 0xAF, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22],
                               [0x22, 0xF5, 0x80, 0x80, 0x80, 0x22], [0xEF, 0xBB, 0xBF, 0x7B, 0x7D]] {
            var parser = JSONParser(bytes: bytes)
            #expect(throws: JSONParser.Failure.self) { try parser.parse() }
        }
    }

    @Test("nesting is bounded: 16 levels parse, 17 stop with tooDeep, 100,000 do not crash")
    func boundsNesting() throws {
        let sixteen = String(repeating: "[", count: 16) + String(repeating: "]", count: 16)
        _ = try parse(sixteen)
        let seventeen = String(repeating: "{\"a\":", count: 16) + "[1]" + String(repeating: "}", count: 16)
        #expect(failure(seventeen)?.kind == .tooDeep)
        #expect(failure(seventeen)?.path.description == String(repeating: "/a", count: 16))
        let hostile = String(repeating: "[", count: 100_000)
        #expect(failure(hostile)?.kind == .tooDeep)
    }

    @Test("numbers must be finite")
    func finiteNumbers() throws {
        #expect(failure("[1e999]")?.kind == .notFinite)
        #expect(failure("{\"x\": -1e400}")?.path == "/x")
        #expect(try parse("[1.7976931348623157e308]").0 == .array([.number(1.7976931348623157e308)]))
    }

    @Test("duplicate member names are refused with their path")
    func duplicateKeys() {
        let error = failure(#"{"a": {"b": 1, "b": 2}}"#)
        #expect(error?.kind == .duplicateKey)
        #expect(error?.path == "/a/b")
    }

    @Test("NUL and unpaired surrogates are reported with the path of their string")
    func stringProblems() throws {
        let (_, problems) = try parse(#"{"a": "x\u0000y", "b": ["ok", "\ud800"], "c": "\udc00", "d": "\ud800\u0041"}"#)
        #expect(problems == [
            .init(kind: .nul, path: "/a"),
            .init(kind: .unpairedSurrogate, path: "/b/1"),
            .init(kind: .unpairedSurrogate, path: "/c"),
            .init(kind: .unpairedSurrogate, path: "/d"),
        ])
    }
}

@Suite("Deterministic JSON writer")
struct JSONWriterTests {
    @Test("writes compact JSON with only the needed escapes and integral numbers without fractions")
    func writes() {
        let value = JSONValue.object([
            "text": .string("a\"b\\c\nd\u{01}é🎨/"), "n": .number(3), "f": .number(0.25), "big": .number(1e300),
            "list": .array([.bool(true), .null]), "missing": nil,
        ])
        #expect(value.serializedString == #"{"text":"a\"b\\c\nd\u0001é🎨/","n":3,"f":0.25,"big":1e+300,"list":[true,null]}"#)
    }

    @Test("what it writes parses back to the same value")
    func roundTrip() throws {
        let value = JSONValue.object([("k", .array([.number(-0.5), .string("\u{7F}\t"), .object([])]))])
        #expect(try parse(value.serializedString).0 == value)
    }
}
