import Foundation
import GRAKit
import Testing

@Suite("gra dispatcher")
struct DispatcherTests {
    @Test func runsStagesAndPluginsFromPath() throws {
        let dir = ToolRunner.scratch()
        let r = try ToolRunner.sh(
            """
            mkdir plugins
            printf '#!/bin/sh\\necho "myfilter got: $*"\\n' > plugins/gra-myfilter
            chmod +x plugins/gra-myfilter
            PATH="$PWD/plugins:$PATH"
            gra myfilter --flag "two words"
            echo '{"id":"a","instruction":"i","output":"o"}' | gra format --to sharegpt
            gra --help | grep -c '^  myfilter$'
            gra nope 2> err.txt; echo "nope $?"
            grep -c "no gra-nope on PATH" err.txt
            """, in: dir)
        #expect(
            r.stdoutLines == [
                "myfilter got: --flag two words",
                #"{"conversations":[{"from":"human","value":"i"},{"from":"gpt","value":"o"}],"id":"a"}"#,
                "1", "nope 64", "1"
            ], "\(r.stderr)")
    }
}
