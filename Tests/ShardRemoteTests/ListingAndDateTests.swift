import ShardRemote
import Testing

@testable import ShardRemote

@Suite struct ListingParseTests {
    @Test func parsesAListingWithEntitiesAndPages() throws {
        let xml = """
            <?xml version="1.0" encoding="UTF-8"?>
            <ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
              <Name>b</Name><Prefix>p/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>
              <IsTruncated>true</IsTruncated>
              <Contents><Key>p/a&amp;b &lt;c&gt; &#233;&#x263A;.tar</Key><LastModified>2024-02-29T12:34:56.000Z</LastModified>
                <ETag>&quot;abc&quot;</ETag><Size>1024</Size><StorageClass>STANDARD</StorageClass></Contents>
              <!-- a comment -->
              <Contents><Key><![CDATA[p/<raw>.tar]]></Key><Size>0</Size><Owner><ID>x</ID></Owner></Contents>
              <NextContinuationToken>tok/+=</NextContinuationToken>
            </ListBucketResult>
            """
        let page = try RemoteClient.parseListing(Array(xml.utf8), bucket: "b")
        #expect(page.isTruncated)
        #expect(page.nextContinuationToken == "tok/+=")
        #expect(
            page.objects.map(\.location) == [
                .s3(bucket: "b", key: "p/a&b <c> é☺.tar"), .s3(bucket: "b", key: "p/<raw>.tar"),
            ])
        #expect(page.objects[0].etag == "\"abc\"")
        #expect(page.objects[0].size == 1024)
        #expect(page.objects[0].lastModified == 1_709_210_096)
        #expect(page.objects[1].etag == nil)
    }

    @Test func refusesWhatIsNotAListing() {
        #expect(throws: MiniXML.Malformed.self) {
            try RemoteClient.parseListing(Array("<Error><Code>x</Code></Error>".utf8), bucket: "b")
        }
        #expect(throws: MiniXML.Malformed.self) {
            try RemoteClient.parseListing(Array("<ListBucketResult><Key>".utf8), bucket: "b")
        }
        #expect(throws: MiniXML.Malformed.self) {
            try RemoteClient.parseListing(Array("<ListBucketResult>&bogus;</ListBucketResult>".utf8), bucket: "b")
        }
    }

    @Test func readsS3ErrorDocuments() {
        let body = Array(
            "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>The key &apos;k&apos; does not exist</Message></Error>"
                .utf8)
        let (code, message) = S3ErrorBody.parse(body)
        #expect(code == "NoSuchKey")
        #expect(message == "The key 'k' does not exist")
        #expect(S3ErrorBody.parse(Array("not xml <".utf8)).code == nil)
    }

    @Test func parsesBothDateForms() {
        #expect(HTTPDate.parse("Wed, 21 Oct 2015 07:28:00 GMT") == 1_445_412_480)
        #expect(HTTPDate.parse("2015-10-21T07:28:00.000Z") == 1_445_412_480)
        #expect(HTTPDate.parse("1970-01-01T00:00:00Z") == 0)
        #expect(HTTPDate.parse("yesterday") == nil)
    }
}
