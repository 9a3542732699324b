import Foundation
import MorpheusCore

/// Realistic, valid corrections of every modality and type, unique in content, spread over
/// many users: what an editor population publishes. Unique in what the quality gate compares,
/// too: with one image instruction for everyone, a user who corrected several panels was
/// (rightly) held for review as `repeated_content`.
struct CorrectionFactory: Sendable {
    /// Distinct user ids; a connection publishes for the users `u` with `u % connections == index`.
    let users: [String]
    /// Makes content unique across benchmark runs against the same database.
    let nonce: String
    /// Whether image instructions carry the correction's tag (see above). Off only for the
    /// counted workload, whose bytes must stay those its baseline was measured with.
    let uniqueInstructions: Bool

    /// The language of the text corrections.
    let corpus: Corpus

    enum Corpus: String, Sendable, CaseIterable {
        /// English texts: the fixed workload every baseline was measured with.
        case english
        /// The same scene in French, German, Spanish and Japanese, in turn: texts that are not
        /// ASCII take the quality gate's and the parser's general (Unicode) paths.
        case multilingual
    }

    init(userCount: Int, nonce: String, uniqueInstructions: Bool = true, corpus: Corpus = .english) {
        users = (0..<userCount).map { "bench-user-\($0)" }
        self.nonce = nonce
        self.uniqueInstructions = uniqueInstructions
        self.corpus = corpus
    }

    /// Prompt, original and corrected text of the multilingual corpus (`TAG`: the correction's
    /// tag, which keeps the content unique). Accepted by the gate like the English ones.
    static let multilingual: [(prompt: String, original: String, corrected: String)] = [
        ("Décris le port à l'aube dans le style d'une bande dessinée noire, case 3, du point de vue du gardien du phare.",
         "Un port à l'aube. Des bateaux sont sur l'eau et il y a un phare. Le ciel est orangé et tout est calme. Un homme se tient sur la jetée et regarde les bateaux.",
         "La brume se lève sur le port tandis que les premiers chalutiers larguent les amarres ; le gardien du phare, col relevé contre le vent salé, les regarde partir un à un (TAG)."),
        ("Beschreibe den Hafen im Morgengrauen im Stil eines düsteren Comics, Bild 3, aus der Sicht des Leuchtturmwärters.",
         "Ein Hafen im Morgengrauen. Boote liegen im Wasser und es gibt einen Leuchtturm. Der Himmel ist orange und es ist still. Ein Mann steht auf dem Steg und schaut auf die Boote.",
         "Nebel hebt sich über dem Hafen, während die ersten Kutter ablegen; der Leuchtturmwärter, den Kragen gegen den salzigen Wind hochgeschlagen, sieht ihnen einzeln nach (TAG)."),
        ("Describe el puerto al amanecer con el estilo de un cómic negro, viñeta 3, desde la mirada del farero.",
         "Un puerto al amanecer. Hay barcos en el agua y un faro. El cielo es naranja y todo está tranquilo. Un hombre está de pie en el muelle y mira los barcos.",
         "La niebla se levanta sobre el puerto mientras los primeros pesqueros sueltan amarras; el farero, con el cuello alzado contra el viento salado, los ve salir uno a uno (TAG)."),
        ("夜明けの港を、灯台守の視点から、ノワール漫画の雰囲気で描写してください。コマ3。",
         "夜明けの港。水の上に船があり、灯台がある。空はオレンジ色で静かだ。桟橋に男が立って船を見ている。",
         "港に立ちこめた霧が晴れていき、最初の漁船がもやいを解く。潮風に襟を立てた灯台守が、一隻ずつ出ていく船を見送っている（TAG）。"),
    ]

    /// The correction number `sequence` of connection `connection`, for `user`.
    func correction(sequence: UInt64, connection: Int, user: String, occurredAt: String) -> (modality: String, payload: [UInt8]) {
        let id = Self.uuid(connection: connection, sequence: sequence, nonce: nonce)
        let tag = "\(nonce)-\(connection)-\(sequence)"
        let generation = "gen-\(sequence % 4096)"
        let experiment = sequence % 2 == 0 ? "A" : "B"
        let head = """
            {"schema":"morpheus.correction/1","feedbackId":"\(id)","userId":"\(user)",
            """
        let tail = """
            "editDurationMs":\(1000 + sequence % 60_000),"client":{"app":"studio","version":"2.4.0"}}
            """
        // Mix: 60 % text, 25 % image, 15 % layout, every correction type of each.
        switch sequence % 20 {
        case 0..<12:
            let types = ["scene_description", "character_description", "dialogue", "caption", "panel_description"]
            let type = types[Int(sequence % UInt64(types.count))]
            var prompt = "Describe the harbour at dawn in the style of a noir comic, panel \(sequence % 9), from the lighthouse keeper's view."
            var original = "A harbour at dawn. Boats are in the water and there is a lighthouse. The sky is orange and it is quiet. A man stands on the pier and looks at the boats."
            var corrected = "Fog lifts off the harbour as the first trawlers slip their moorings; the lighthouse keeper, collar up against the salt wind, counts them out one by one (\(tag))."
            if corpus == .multilingual {
                let text = Self.multilingual[Int(sequence / 20 % UInt64(Self.multilingual.count))]
                (prompt, original, corrected) = (text.prompt, text.original, text.corrected.replacingOccurrences(of: "TAG", with: tag))
            }
            let body = """
                "modality":"text","correctionType":"\(type)","occurredAt":"\(occurredAt)",\
                "target":{"comicId":"comic-\(sequence % 97)","sceneId":"scene-\(sequence % 13)","characterId":"char-\(sequence % 7)"},\
                "generation":{"id":"\(generation)","model":"storyteller","modelVersion":"3.\(sequence % 3)",\
                "prompt":"\(prompt)","experiment":{"id":"exp-7","arm":"\(experiment)"}},\
                "original":{"text":"\(original)"},"corrected":{"text":"\(corrected)"},
                """
            return ("text", Array((head + body + tail).utf8))
        case 12..<17:
            let types = ["image_prompt", "image_inpaint", "image_choice", "image_style"]
            let type = types[Int(sequence % UInt64(types.count))]
            let body = """
                "modality":"image","correctionType":"\(type)","occurredAt":"\(occurredAt)",\
                "target":{"comicId":"comic-\(sequence % 97)","panelId":"panel-\(sequence % 31)"},\
                "generation":{"id":"\(generation)","model":"painter","modelVersion":"7","prompt":"A red door in a rainy alley, ink and watercolour"},\
                "original":{"uri":"s3://renders/\(generation)/panel.png","sha256":"\(String(repeating: "ab", count: 32))","width":1024,"height":768,"seed":\(sequence % 100_000),\
                "params":{"steps":30,"sampler":"euler","hires":true}},\
                "corrected":{"uri":"s3://renders/\(tag)/panel.png","instruction":"Make the door blue and add a cat on the step\(uniqueInstructions ? " (\(tag))" : "")",\
                "mask":{"regions":[{"x":0.1,"y":0.2,"width":0.3,"height":0.4}]}},
                """
            return ("image", Array((head + body + tail).utf8))
        default:
            let type = sequence % 2 == 0 ? "panel_layout" : "panel_order"
            let split = 200 + Double(sequence % 400)
            let body = """
                "modality":"layout","correctionType":"\(type)","occurredAt":"\(occurredAt)",\
                "target":{"comicId":"comic-\(sequence % 97)"},\
                "generation":{"id":"\(generation)","model":"composer","modelVersion":"1.0"},\
                "original":{"canvas":{"width":800,"height":1200},"panels":[{"id":"a","x":0,"y":0,"width":800,"height":600,"order":1},\
                {"id":"b","x":0,"y":600,"width":800,"height":600,"order":2}]},\
                "corrected":{"canvas":{"width":800,"height":1200},"panels":[{"id":"a","x":0,"y":0,"width":\(split),"height":1200,"order":2},\
                {"id":"b","x":\(split),"y":0,"width":\(800 - split),"height":1200,"order":1},{"id":"c-\(tag)","x":20,"y":20,"width":120,"height":160}]},
                """
            return ("layout", Array((head + body + tail).utf8))
        }
    }

    /// A version-4-shaped UUID that encodes connection and sequence, so ids never collide.
    /// (Hex by hand: `String(format:)` showed in the load generator's profile.)
    static func uuid(connection: Int, sequence: UInt64, nonce: String) -> String {
        "\(nonce)-\(hex(UInt64(connection), digits: 4))-4000-8000-\(hex(sequence, digits: 12))"
    }

    static func hex(_ value: UInt64, digits: Int) -> String {
        let alphabet = Array("0123456789abcdef".utf8)
        var bytes = [UInt8](repeating: UInt8(ascii: "0"), count: digits)
        var rest = value
        for index in stride(from: digits - 1, through: 0, by: -1) {
            bytes[index] = alphabet[Int(rest & 0xF)]
            rest >>= 4
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
