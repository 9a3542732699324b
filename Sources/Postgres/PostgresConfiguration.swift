import CLibPQ

/// Where and how to connect. Built from a `postgres://` URL or from separate parameters; either
/// way the values reach libpq as keyword/value arrays (`PQconnectdbParams`), never spliced into
/// a conninfo string.
public struct PostgresConfiguration: Sendable {
    /// libpq keyword → value, in the order given; later entries override the URL's parts.
    private(set) var parameters: [(String, String)]

    /// From a `postgres://user:password@host:port/database?sslmode=…` URL, parsed by libpq itself.
    public init(url: String, applicationName: String? = nil, connectTimeout: Duration = .seconds(5)) throws {
        var error: UnsafeMutablePointer<CChar>? = nil
        guard let options = PQconninfoParse(url, &error) else {
            defer { PQfreemem(error) }
            // libpq's message never echoes the password; it names the syntax problem.
            let message = error.map { String(cString: $0) } ?? "invalid connection URL"
            throw PostgresError(.connectionFailed, message: message.split(separator: "\n").first.map(String.init) ?? message)
        }
        PQconninfoFree(options)
        parameters = [("dbname", url)]
        setCommon(applicationName: applicationName, connectTimeout: connectTimeout)
    }

    /// From separate parameters.
    public init(
        host: String, port: Int = 5432, user: String, password: String? = nil, database: String,
        applicationName: String? = nil, connectTimeout: Duration = .seconds(5)
    ) {
        parameters = [("host", host), ("port", String(port)), ("user", user), ("dbname", database)]
        if let password { parameters.append(("password", password)) }
        setCommon(applicationName: applicationName, connectTimeout: connectTimeout)
    }

    private mutating func setCommon(applicationName: String?, connectTimeout: Duration) {
        if let applicationName { parameters.append(("application_name", applicationName)) }
        parameters.append(("connect_timeout", String(max(1, connectTimeout.components.seconds))))
        parameters.append(("client_encoding", "UTF8"))
        // Fixed output formats, so that the decoders below never depend on server settings.
        parameters.append(("options", "-c DateStyle=ISO,YMD -c TimeZone=UTC -c IntervalStyle=iso_8601 -c extra_float_digits=3 -c client_min_messages=warning"))
    }

    /// The same configuration with one libpq parameter set (e.g. `sslmode`).
    public func setting(_ keyword: String, to value: String) -> PostgresConfiguration {
        var copy = self
        copy.parameters.append((keyword, value))
        return copy
    }

    /// Whether the first parameter is a URL for libpq to expand.
    var expandsURL: Bool { parameters.first?.0 == "dbname" && parameters.count > 0 && parameters[0].1.contains("://") }
}

extension PostgresConfiguration: CustomStringConvertible {
    /// Host, port, user and database only: never the password.
    public var description: String {
        var values: [String: String] = [:]
        for (keyword, value) in parameters where keyword != "password" {
            if keyword == "dbname", value.contains("://") {
                var error: UnsafeMutablePointer<CChar>? = nil
                if let options = PQconninfoParse(value, &error) {
                    var cursor = options
                    while let keyword = cursor.pointee.keyword {
                        let name = String(cString: keyword)
                        if let value = cursor.pointee.val, name != "password" { values[name] = String(cString: value) }
                        cursor += 1
                    }
                    PQconninfoFree(options)
                }
                PQfreemem(error)
            } else {
                values[keyword] = value
            }
        }
        return "postgres://\(values["user"] ?? "")@\(values["host"] ?? "localhost"):\(values["port"] ?? "5432")/\(values["dbname"] ?? "")"
    }
}
