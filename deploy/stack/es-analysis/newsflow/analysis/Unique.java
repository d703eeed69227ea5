package newsflow.analysis;

import java.io.IOException;
import org.apache.lucene.analysis.CharArraySet;
import org.apache.lucene.analysis.TokenFilter;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.tokenattributes.CharTermAttribute;
import org.elasticsearch.plugin.NamedComponent;
import org.elasticsearch.plugin.analysis.TokenFilterFactory;

/** Drops every token whose term came earlier in the stream, at any position. */
@NamedComponent("unique")
public class Unique implements TokenFilterFactory {
    @Override
    public TokenStream create(TokenStream input) {
        return new TokenFilter(input) {
            private final CharTermAttribute term = addAttribute(CharTermAttribute.class);
            private final CharArraySet seen = new CharArraySet(8, false);

            @Override
            public boolean incrementToken() throws IOException {
                while (input.incrementToken()) {
                    if (!seen.contains(term.buffer(), 0, term.length())) {
                        seen.add(term.toString());
                        return true;
                    }
                }
                return false;
            }

            @Override
            public void reset() throws IOException {
                super.reset();
                seen.clear();
            }
        };
    }
}
