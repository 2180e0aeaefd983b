import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The default `Transport`: a `URLSession` of its own (ephemeral: no cookies, no URL cache), with
/// timeouts and without following redirects (a collector that redirects is misconfigured; the core
/// treats the 3xx like any other answer). Kotlin: `HttpTransport` on `HttpURLConnection`.
///
/// `post` blocks the SDK's upload thread until the answer arrives: that thread exists for this, and one
/// request at a time is what the core's pull model asks for.
public final class URLSessionTransport: NSObject, Transport, URLSessionTaskDelegate {
    private let timeout: TimeInterval
    private lazy var session: URLSession = {
        let c = URLSessionConfiguration.ephemeral
        c.timeoutIntervalForRequest = timeout
        c.timeoutIntervalForResource = timeout * 2
        c.httpShouldSetCookies = false
        c.urlCache = nil
        return URLSession(configuration: c, delegate: self, delegateQueue: nil)
    }()

    /// `timeout`: seconds without data before a request fails (a network error: the core backs off).
    public init(timeout: TimeInterval = 20) {
        self.timeout = timeout
        super.init()
    }

    public func post(url: String, headers: [String: String], body: Data) throws -> TransportResult {
        guard let u = URL(string: url) else { throw URLError(.badURL) }
        var req = URLRequest(url: u)
        req.httpMethod = "POST"
        req.httpBody = body
        for (k, v) in headers { req.setValue(v, forHTTPHeaderField: k) }

        let done = DispatchSemaphore(value: 0)
        var result = TransportResult.networkError("no answer")
        let task = session.dataTask(with: req) { _, response, error in
            defer { done.signal() }
            if let error = error {
                result = .networkError(error.localizedDescription)
                return
            }
            guard let http = response as? HTTPURLResponse, (100...599).contains(http.statusCode) else {
                result = .networkError("not an HTTP answer")
                return
            }
            result = .response(status: http.statusCode, retryAfter: http.value(forHTTPHeaderField: "Retry-After"))
        }
        task.resume()
        done.wait()
        return result
    }

    public func urlSession(
        _ session: URLSession,
        task: URLSessionTask,
        willPerformHTTPRedirection response: HTTPURLResponse,
        newRequest request: URLRequest,
        completionHandler: @escaping (URLRequest?) -> Void
    ) {
        completionHandler(nil)
    }
}

/// The default `RulesTransport`: an ephemeral `URLSession` without a URL cache
/// (`reloadIgnoringLocalAndRemoteCacheData`), sending the ETag as `If-None-Match` and reporting the
/// status, `ETag` and body. Kotlin: `HttpRulesTransport` on `HttpURLConnection` with `useCaches = false`.
public final class URLSessionRulesTransport: RulesTransport {
    private let maxBytes: Int
    private let session: URLSession

    public init(timeout: TimeInterval = 20, maxBytes: Int = 4 * 1024 * 1024) {
        self.maxBytes = maxBytes
        let c = URLSessionConfiguration.ephemeral
        c.timeoutIntervalForRequest = timeout
        c.timeoutIntervalForResource = timeout * 2
        c.httpShouldSetCookies = false
        c.urlCache = nil
        c.requestCachePolicy = .reloadIgnoringLocalAndRemoteCacheData
        session = URLSession(configuration: c)
    }

    public func get(url: String, etag: String?) throws -> RulesResult {
        guard let u = URL(string: url) else { throw URLError(.badURL) }
        var req = URLRequest(url: u, cachePolicy: .reloadIgnoringLocalAndRemoteCacheData)
        req.httpMethod = "GET"
        req.setValue("no-cache", forHTTPHeaderField: "Cache-Control")
        if let etag = etag { req.setValue(etag, forHTTPHeaderField: "If-None-Match") }
        let done = DispatchSemaphore(value: 0)
        var result = RulesResult(status: nil)
        let limit = maxBytes
        let task = session.dataTask(with: req) { data, response, error in
            defer { done.signal() }
            guard error == nil, let http = response as? HTTPURLResponse, (100...599).contains(http.statusCode) else {
                return
            }
            let tag = http.value(forHTTPHeaderField: "ETag")
            // Too large to be ours: a failed request (no body), retried later by the core's rules.
            let body = http.statusCode == 200 ? data.flatMap { $0.count <= limit ? $0 : nil } : nil
            result = RulesResult(status: http.statusCode, etag: tag, body: body)
        }
        task.resume()
        done.wait()
        return result
    }
}

/// The default `ProfileTransport`: an ephemeral `URLSession` without a URL cache or cookies, sending
/// `Authorization: Bearer <token>` and reporting the status and the body of a 200. Kotlin:
/// `HttpProfileTransport` on `HttpURLConnection`.
public final class URLSessionProfileTransport: NSObject, ProfileTransport, URLSessionTaskDelegate {
    private let maxBytes: Int
    private let timeout: TimeInterval
    private lazy var session: URLSession = {
        let c = URLSessionConfiguration.ephemeral
        c.timeoutIntervalForRequest = timeout
        c.timeoutIntervalForResource = timeout * 2
        c.httpShouldSetCookies = false
        c.urlCache = nil
        c.requestCachePolicy = .reloadIgnoringLocalAndRemoteCacheData
        return URLSession(configuration: c, delegate: self, delegateQueue: nil)
    }()

    public init(timeout: TimeInterval = 20, maxBytes: Int = 4 * 1024 * 1024) {
        self.timeout = timeout
        self.maxBytes = maxBytes
        super.init()
    }

    public func get(url: String, token: String) throws -> ProfileResult {
        guard let u = URL(string: url) else { throw URLError(.badURL) }
        var req = URLRequest(url: u, cachePolicy: .reloadIgnoringLocalAndRemoteCacheData)
        req.httpMethod = "GET"
        req.setValue("no-store", forHTTPHeaderField: "Cache-Control")
        req.setValue("application/json", forHTTPHeaderField: "Accept")
        req.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        let done = DispatchSemaphore(value: 0)
        var result = ProfileResult(status: nil)
        let limit = maxBytes
        let task = session.dataTask(with: req) { data, response, error in
            defer { done.signal() }
            guard error == nil, let http = response as? HTTPURLResponse, (100...599).contains(http.statusCode) else {
                return
            }
            // Too large to be a profile: a failed request (no body), retried later by the core.
            let body = http.statusCode == 200 ? data.flatMap { $0.count <= limit ? $0 : nil } : nil
            result = ProfileResult(status: http.statusCode, body: body)
        }
        task.resume()
        done.wait()
        return result
    }

    /// A redirect would carry the bearer token to another place: not followed (the answer is a failure).
    public func urlSession(
        _ session: URLSession,
        task: URLSessionTask,
        willPerformHTTPRedirection response: HTTPURLResponse,
        newRequest request: URLRequest,
        completionHandler: @escaping (URLRequest?) -> Void
    ) {
        completionHandler(nil)
    }
}
