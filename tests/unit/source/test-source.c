/* Unit tests of the source module's pure parts: the write-back YAML edit,
 * the known_hosts check, Git URLs and the choice of the remote ref. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sluice/source.h"
#include "git-internal.h"

/* ---- write-back edit ---------------------------------------------------------- */

static char *edit(const char *in, unsigned idx, const char *name, int *code)
{
	struct sl_buf out;
	struct sl_error err = {0};
	*code = sl_source_yaml_complete(in, strlen(in), idx, name, &out, &err);
	if (*code < 0)
		return NULL;
	return sl_buf_steal(&out);
}

static void test_edit_in_place(void **state)
{
	const char *in = "# a request\n"
	                 "apiVersion: streaming.sneaksanddata.com/v1\n"
	                 "kind: BackfillRequest\n"
	                 "metadata:\n"
	                 "  name: \"bf-1\"   # quoted name\n"
	                 "  namespace: streams\n"
	                 "spec:\n"
	                 "    streamClass: 'mock'\n"
	                 "    completed:   false    # flipped by sluice\n"
	                 "    streamId: s1\n";
	const char *want = "# a request\n"
	                   "apiVersion: streaming.sneaksanddata.com/v1\n"
	                   "kind: BackfillRequest\n"
	                   "metadata:\n"
	                   "  name: \"bf-1\"   # quoted name\n"
	                   "  namespace: streams\n"
	                   "spec:\n"
	                   "    streamClass: 'mock'\n"
	                   "    completed:   true    # flipped by sluice\n"
	                   "    streamId: s1\n";
	int code;
	char *out = edit(in, 0, "bf-1", &code);
	assert_int_equal(code, 0);
	assert_string_equal(out, want);
	free(out);
}

static void test_edit_second_document_only(void **state)
{
	const char *in = "kind: BackfillRequest\nmetadata: {name: a}\nspec:\n  completed: false\n"
	                 "---\n"
	                 "kind: BackfillRequest\nmetadata: {name: b}\nspec:\n  completed: false\n"
	                 "---\n"
	                 "kind: ConfigMap\nmetadata: {name: b}\ndata: {completed: \"false\"}\n";
	const char *want = "kind: BackfillRequest\nmetadata: {name: a}\nspec:\n  completed: false\n"
	                   "---\n"
	                   "kind: BackfillRequest\nmetadata: {name: b}\nspec:\n  completed: true\n"
	                   "---\n"
	                   "kind: ConfigMap\nmetadata: {name: b}\ndata: {completed: \"false\"}\n";
	int code;
	char *out = edit(in, 1, "b", &code);
	assert_int_equal(code, 0);
	assert_string_equal(out, want);
	free(out);
	/* the index is stale (a document was inserted before it): found by name */
	out = edit(in, 0, "b", &code);
	assert_int_equal(code, 0);
	assert_string_equal(out, want);
	free(out);
}

static void test_edit_adds_missing_field(void **state)
{
	const char *in = "kind: BackfillRequest\n"
	                 "metadata:\n"
	                 "  name: bf\n"
	                 "spec:\n"
	                 "   # the class\n"
	                 "   streamClass: mock\n"
	                 "   streamId: s1\n";
	const char *want = "kind: BackfillRequest\n"
	                   "metadata:\n"
	                   "  name: bf\n"
	                   "spec:\n"
	                   "   # the class\n"
	                   "   completed: true\n"
	                   "   streamClass: mock\n"
	                   "   streamId: s1\n";
	int code;
	char *out = edit(in, 0, "bf", &code);
	assert_int_equal(code, 0);
	assert_string_equal(out, want);
	free(out);

	out = edit("kind: BackfillRequest\nmetadata: {name: f}\nspec: {streamId: s1}\n", 0, "f", &code);
	assert_int_equal(code, 0);
	assert_string_equal(
	    out, "kind: BackfillRequest\nmetadata: {name: f}\nspec: {completed: true, streamId: s1}\n");
	free(out);
	out = edit("kind: BackfillRequest\nmetadata: {name: f}\nspec: {}\n", 0, "f", &code);
	assert_int_equal(code, 0);
	assert_string_equal(out, "kind: BackfillRequest\nmetadata: {name: f}\nspec: {completed: true}\n");
	free(out);
}

static void test_edit_multibyte_before(void **state)
{
	/* libyaml counts characters; the edit must land on bytes */
	const char *in =
	    "# Größe: ünïcödé ✓\nkind: BackfillRequest\nmetadata: {name: u, labels: {x: \"é\"}}\n"
	    "spec: {note: \"日本\", completed: false}\n";
	const char *want =
	    "# Größe: ünïcödé ✓\nkind: BackfillRequest\nmetadata: {name: u, labels: {x: \"é\"}}\n"
	    "spec: {note: \"日本\", completed: true}\n";
	int code;
	char *out = edit(in, 0, "u", &code);
	assert_int_equal(code, 0);
	assert_string_equal(out, want);
	free(out);
}

static void test_edit_refusals(void **state)
{
	int code;
	assert_null(
	    edit("kind: BackfillRequest\nmetadata: {name: a}\nspec:\n  completed: true\n", 0, "a", &code));
	assert_int_equal(code, SL_EEXIST);
	assert_null(
	    edit("kind: BackfillRequest\nmetadata: {name: a}\nspec:\n  completed: false\n", 0, "zz", &code));
	assert_int_equal(code, SL_ENOTFOUND);
	assert_null(
	    edit("kind: StreamClass\nmetadata: {name: a}\nspec:\n  completed: false\n", 0, "a", &code));
	assert_int_equal(code, SL_ENOTFOUND);
	assert_null(edit("kind: BackfillRequest\nmetadata: {name: a}\nspec: nope\n", 0, "a", &code));
	assert_int_equal(code, SL_EINVALID);
	assert_null(edit("kind: BackfillRequest\nmetadata: {name: a\nspec: [\n", 0, "a", &code));
	assert_int_equal(code, SL_EINVALID);
	/* what the edit could not make take effect, or only by breaking the
	 * file: a merge key, a completed that is an alias or a collection, a
	 * first key after "? ", text not in UTF-8 */
	assert_null(edit("b: &b {completed: false}\nkind: BackfillRequest\nmetadata: {name: a}\n"
	                 "spec:\n  <<: *b\n  x: 1\n",
	                 0, "a", &code));
	assert_int_equal(code, SL_EINVALID);
	assert_null(edit("s: &s {spec: {}}\nkind: BackfillRequest\nmetadata: {name: a}\n<<: *s\n", 0, "a", &code));
	assert_int_equal(code, SL_EINVALID);
	assert_null(edit("f: &f false\nkind: BackfillRequest\nmetadata: {name: a}\nspec:\n  completed: *f\n", 0,
	                 "a", &code));
	assert_int_equal(code, SL_EINVALID);
	assert_null(edit("kind: BackfillRequest\nmetadata: {name: a}\nspec:\n  completed: [false]\n", 0, "a", &code));
	assert_int_equal(code, SL_EINVALID);
	assert_null(edit("kind: BackfillRequest\nmetadata: {name: a}\nspec:\n  ? x\n  : 1\n", 0, "a", &code));
	assert_int_equal(code, SL_EINVALID);
	/* a collection as a key: its value is no key (the value "completed"
	 * was taken for a key, and the next key "false" rewritten to "true") */
	assert_null(edit("kind: BackfillRequest\nmetadata: {name: a}\nspec:\n  x: 1\n  ? [a]\n  : completed\n  false: 1\n",
	                 0, "a", &code));
	assert_int_equal(code, SL_EINVALID);
	assert_null(edit("kind: BackfillRequest\nmetadata: {name: a}\nspec:\n  ? a1:\n   \n", 0, "a", &code));
	assert_int_equal(code, SL_EINVALID);
	{
		/* UTF-16LE with its BOM: libyaml reads it, but its marks count
		 * UTF-16 characters */
		static const char u16[] = "\xff\xfek\0i\0n\0d\0:\0 \0B\0a\0c\0k\0f\0i\0l\0l\0R\0e\0q\0u\0e\0s\0t\0"
		                          "\n\0s\0p\0e\0c\0:\0 \0{\0}\0\n\0";
		struct sl_buf out;
		assert_int_equal(sl_source_yaml_complete(u16, sizeof(u16) - 1, 0, "", &out, NULL), SL_EINVALID);
	}
}

/* A block scalar value ("|", ">") is replaced up to its last content: the
 * line break after it stays, so the next key keeps its line. */
static void test_edit_block_scalar(void **state)
{
	int code;
	char *out = edit("kind: BackfillRequest\nmetadata: {name: a}\nspec:\n  completed: |\n    false\n"
	                 "  after: 1\n",
	                 0, "a", &code);
	assert_int_equal(code, 0);
	assert_string_equal(out, "kind: BackfillRequest\nmetadata: {name: a}\nspec:\n  completed: true\n  after: 1\n");
	free(out);
	out = edit("kind: BackfillRequest\nmetadata: {name: a}\nspec:\n  completed: >-\n    no", 0, "a", &code);
	assert_int_equal(code, 0);
	assert_string_equal(out, "kind: BackfillRequest\nmetadata: {name: a}\nspec:\n  completed: true");
	free(out);
}

/* ---- known_hosts ----------------------------------------------------------------- */

static const char *KEY_A = "AAAAC3NzaC1lZDI1NTE5AAAAIPZ2VketMbXYA/Ja/BHE3K/1v6C3ycy+uMa4HsXRmkEb";
static const char *KEY_B = "AAAAC3NzaC1lZDI1NTE5AAAAINh32U7cZj37DfUBRz+uKEtcx+Xc/j/QPGmSr3wI9rYE";

static size_t unb64(const char *s, uint8_t *out)
{
	static const char *al = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;
	for (; *s && *s != '='; s++) {
		acc = (acc << 6) | (uint32_t)(strchr(al, *s) - al);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	return o;
}

static int check(const char *kh, const char *host, int port, const char *key)
{
	uint8_t blob[256];
	size_t n = unb64(key, blob);
	struct sl_error err = {0};
	return sl_source_known_hosts_check(kh, strlen(kh), host, port, "ssh-ed25519", blob, n, &err);
}

static void test_known_hosts_plain(void **state)
{
	char kh[1024];
	snprintf(kh, sizeof(kh),
	         "# comment\n\n"
	         "git.example.com,10.0.0.1 ssh-ed25519 %s\n"
	         "[127.0.0.1]:2222 ssh-ed25519 %s comment here\n"
	         "*.wild.test,!bad.wild.test ssh-ed25519 %s\n"
	         "other.example.com ssh-rsa AAAAB3NzaC1yc2E=\n",
	         KEY_A, KEY_B, KEY_A);
	assert_int_equal(check(kh, "git.example.com", 22, KEY_A), 0);
	assert_int_equal(check(kh, "GIT.example.com", 22, KEY_A), 0);
	assert_int_equal(check(kh, "10.0.0.1", 22, KEY_A), 0);
	assert_int_equal(check(kh, "127.0.0.1", 2222, KEY_B), 0);
	/* the same host on another port is another entry */
	assert_int_equal(check(kh, "127.0.0.1", 22, KEY_B), SL_ENOTFOUND);
	/* a changed key is refused, distinctly from an unknown host */
	assert_int_equal(check(kh, "git.example.com", 22, KEY_B), SL_EFORBIDDEN);
	assert_int_equal(check(kh, "127.0.0.1", 2222, KEY_A), SL_EFORBIDDEN);
	assert_int_equal(check(kh, "a.wild.test", 22, KEY_A), 0);
	assert_int_equal(check(kh, "bad.wild.test", 22, KEY_A), SL_ENOTFOUND);
	/* known only with another key type: not accepted */
	assert_int_equal(check(kh, "other.example.com", 22, KEY_A), SL_EFORBIDDEN);
	assert_int_equal(check(kh, "unknown.example.com", 22, KEY_A), SL_ENOTFOUND);
	assert_int_equal(check("", "git.example.com", 22, KEY_A), SL_ENOTFOUND);
}

static void test_known_hosts_hashed_and_revoked(void **state)
{
	char kh[1024];
	/* produced by ssh-keygen -H from "example.com" and "[example.org]:2222" */
	snprintf(kh, sizeof(kh),
	         "|1|TPf/jRl3EfkbM/QdTvsUd5JLaWs=|JMwQPMWJ3mQWBZINCyMP6nIVQxo= ssh-ed25519 %s\n"
	         "|1|ruB/2X9Y6xhLaKRTEyE/moAzYSY=|FDQoHpOLsbxxHMiuwqGE2CdIpjU= ssh-ed25519 %s\n",
	         KEY_A, KEY_A);
	assert_int_equal(check(kh, "example.com", 22, KEY_A), 0);
	assert_int_equal(check(kh, "example.org", 2222, KEY_A), 0);
	assert_int_equal(check(kh, "example.org", 22, KEY_A), SL_ENOTFOUND);
	assert_int_equal(check(kh, "example.com", 22, KEY_B), SL_EFORBIDDEN);

	snprintf(kh, sizeof(kh), "h.test ssh-ed25519 %s\n@revoked h.test ssh-ed25519 %s\n", KEY_A, KEY_A);
	assert_int_equal(check(kh, "h.test", 22, KEY_A), SL_EFORBIDDEN);
	snprintf(kh, sizeof(kh), "@cert-authority *.test ssh-ed25519 %s\n", KEY_A);
	assert_int_equal(check(kh, "h.test", 22, KEY_A), SL_ENOTFOUND);
	/* a revoked key is refused, not the host's other keys; CRLF is whitespace */
	snprintf(kh, sizeof(kh), "@revoked h.test ssh-ed25519 %s\r\nh.test ssh-ed25519 %s\r\n", KEY_B, KEY_A);
	assert_int_equal(check(kh, "h.test", 22, KEY_A), 0);
	assert_int_equal(check(kh, "h.test", 22, KEY_B), SL_EFORBIDDEN);
	/* a negated pattern wins over a match elsewhere in the list */
	snprintf(kh, sizeof(kh), "*.test,!h.test ssh-ed25519 %s\n", KEY_A);
	assert_int_equal(check(kh, "h.test", 22, KEY_A), SL_ENOTFOUND);
	assert_int_equal(check(kh, "i.test", 22, KEY_A), 0);
}

/* A host name too long for the check is refused, never matched by its first
 * bytes: an entry for the prefix must not vouch for a longer name. */
static void test_known_hosts_long_name(void **state)
{
	char prefix[300], host[512], kh[1024];

	memset(prefix, 'a', sizeof(prefix) - 1);
	prefix[sizeof(prefix) - 1] = '\0';
	snprintf(kh, sizeof(kh), "%s ssh-ed25519 %s\n[%s ssh-ed25519 %s\n*.test ssh-ed25519 %s\n", prefix,
	         KEY_A, prefix + 1, KEY_A, KEY_A);
	snprintf(host, sizeof(host), "%s.attacker.test", prefix);
	assert_int_equal(check(kh, host, 22, KEY_A), SL_EINVALID);
	assert_int_equal(check(kh, host, 2222, KEY_A), SL_EINVALID);
	/* the prefix itself is still an ordinary host */
	assert_int_equal(check(kh, prefix, 22, KEY_A), 0);
}

/* Wildcards match as OpenSSH's do, and many of them cost no more than a
 * pass per character: a pattern of 30 "*a" against a 250-character name
 * took exponential time when every * was backtracked. */
static void test_known_hosts_wildcards(void **state)
{
	char host[256], kh[1024], *p = kh;

	assert_int_equal(check("h*.t?st ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPZ2VketMbXYA/Ja/BHE3K/1v6C3ycy+uMa4HsXRmkEb\n",
	                       "host.test", 22, KEY_A), 0);
	assert_int_equal(check("h*.t?st ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPZ2VketMbXYA/Ja/BHE3K/1v6C3ycy+uMa4HsXRmkEb\n",
	                       "host.tst", 22, KEY_A), SL_ENOTFOUND);
	assert_int_equal(check("*** ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPZ2VketMbXYA/Ja/BHE3K/1v6C3ycy+uMa4HsXRmkEb\n",
	                       "any", 22, KEY_A), 0);
	assert_int_equal(check("a*b*c ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPZ2VketMbXYA/Ja/BHE3K/1v6C3ycy+uMa4HsXRmkEb\n",
	                       "aXbYbZc", 22, KEY_A), 0);
	assert_int_equal(check("a*b*c ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPZ2VketMbXYA/Ja/BHE3K/1v6C3ycy+uMa4HsXRmkEb\n",
	                       "aXbYbZcd", 22, KEY_A), SL_ENOTFOUND);
	for (int i = 0; i < 30; i++)
		p += sprintf(p, "*a");
	sprintf(p, "*b ssh-ed25519 %s\n", KEY_A);
	memset(host, 'a', sizeof(host) - 1);
	host[250] = '\0';
	assert_int_equal(check(kh, host, 22, KEY_A), SL_ENOTFOUND);
	host[249] = 'b';
	assert_int_equal(check(kh, host, 22, KEY_A), 0);
}

/* The host of a URL is not cut to fit either. */
static void test_url_host_too_long(void **state)
{
	char url[600], host[256], user[128];
	int port;

	snprintf(url, sizeof(url), "ssh://git@%0300d.example.com/r.git", 0);
	assert_int_equal(sl_source__url_host(url, host, sizeof(host), &port, user, sizeof(user)),
	                 SL_EINVALID);
	assert_string_equal(host, "");
	snprintf(url, sizeof(url), "git@%0300d.example.com:r.git", 0);
	assert_int_equal(sl_source__url_host(url, host, sizeof(host), &port, user, sizeof(user)),
	                 SL_EINVALID);
	snprintf(url, sizeof(url), "ssh://%0200d@h.test/r.git", 0);
	assert_int_equal(sl_source__url_host(url, host, sizeof(host), &port, user, sizeof(user)),
	                 SL_EINVALID);
	assert_int_equal(
	    sl_source__url_host("ssh://git@h.test:2222/r.git", host, sizeof(host), &port, user, sizeof(user)),
	    0);
	assert_string_equal(host, "h.test");
}

/* ---- URLs ------------------------------------------------------------------------ */

static void test_url_host(void **state)
{
	char host[256], user[128];
	int port;

	sl_source__url_host("https://alice:pw@git.example.com:8443/org/repo.git", host, sizeof(host), &port,
	                    user, sizeof(user));
	assert_string_equal(host, "git.example.com");
	assert_int_equal(port, 8443);
	assert_string_equal(user, "alice");
	sl_source__url_host("https://git.example.com/org/repo.git", host, sizeof(host), &port, user,
	                    sizeof(user));
	assert_string_equal(host, "git.example.com");
	assert_int_equal(port, 443);
	assert_string_equal(user, "");
	sl_source__url_host("ssh://git@[::1]:2222/srv/repo.git", host, sizeof(host), &port, user,
	                    sizeof(user));
	assert_string_equal(host, "::1");
	assert_int_equal(port, 2222);
	assert_string_equal(user, "git");
	/* scp-style: the colon starts the path, not a port */
	sl_source__url_host("git@github.com:org/repo.git", host, sizeof(host), &port, user, sizeof(user));
	assert_string_equal(host, "github.com");
	assert_int_equal(port, 22);
	assert_string_equal(user, "git");
	sl_source__url_host("gitlab.example.com:group/repo.git", host, sizeof(host), &port, user,
	                    sizeof(user));
	assert_string_equal(host, "gitlab.example.com");
	assert_int_equal(port, 22);
	/* a user name with an @ in it: the host follows the last one */
	sl_source__url_host("https://me@corp@git.example.com/r.git", host, sizeof(host), &port, user,
	                    sizeof(user));
	assert_string_equal(host, "git.example.com");
	sl_source__url_host("file:///srv/git/repo.git", host, sizeof(host), &port, user, sizeof(user));
	assert_string_equal(host, "");
	sl_source__url_host("/srv/git/repo.git", host, sizeof(host), &port, user, sizeof(user));
	assert_string_equal(host, "");
}

/* ---- the remote ref ---------------------------------------------------------------- */

static git_remote_head head(const char *name, char fill, const char *symref)
{
	git_remote_head h;
	memset(&h, 0, sizeof(h));
	memset(h.oid.id, fill, sizeof(h.oid.id));
	h.name = (char *)name;
	h.symref_target = (char *)symref;
	return h;
}

static void test_pick_ref(void **state)
{
	git_remote_head hs[] = {
	    head("HEAD", 1, "refs/heads/trunk"), head("refs/heads/trunk", 1, NULL),
	    head("refs/heads/main", 2, NULL),    head("refs/heads/dev", 3, NULL),
	    head("refs/tags/v1", 4, NULL),       head("refs/tags/v1^{}", 5, NULL),
	    head("refs/tags/light", 6, NULL),
	};
	const git_remote_head *heads[SL_ARRAY_SIZE(hs)];
	struct sl_source__git_target t;
	struct sl_error err = {0};
	char spec[700], hex[GIT_OID_HEXSZ + 1];

	for (size_t i = 0; i < SL_ARRAY_SIZE(hs); i++)
		heads[i] = &hs[i];
	/* no ref: the remote's default branch */
	assert_int_equal(sl_source__git_pick_ref(NULL, heads, 7, &t, spec, sizeof(spec), &err), 0);
	assert_string_equal(t.branch, "trunk");
	assert_string_equal(t.refname, "refs/heads/trunk");
	assert_string_equal(spec, "+refs/heads/trunk:refs/sluice/fetched-tip");
	assert_int_equal(t.oid.id[0], 1);
	/* ... and "main" when the remote names none */
	assert_int_equal(sl_source__git_pick_ref(NULL, heads + 1, 6, &t, spec, sizeof(spec), &err), 0);
	assert_string_equal(t.branch, "main");
	/* a plain name is a branch first, then a tag; an annotated tag peeled */
	assert_int_equal(sl_source__git_pick_ref("dev", heads, 7, &t, spec, sizeof(spec), &err), 0);
	assert_string_equal(t.branch, "dev");
	assert_int_equal(t.oid.id[0], 3);
	assert_int_equal(sl_source__git_pick_ref("v1", heads, 7, &t, spec, sizeof(spec), &err), 0);
	assert_string_equal(t.branch, "");
	assert_string_equal(t.refname, "refs/tags/v1");
	assert_int_equal(t.oid.id[0], 5);
	assert_string_equal(spec, "+refs/tags/v1:refs/sluice/fetched-tip");
	assert_int_equal(sl_source__git_pick_ref("refs/tags/light", heads, 7, &t, spec, sizeof(spec), &err),
	                 0);
	assert_int_equal(t.oid.id[0], 6);
	/* a commit id is taken as it is, whatever the remote lists */
	assert_int_equal(sl_source__git_pick_ref("0123456789abcdef0123456789abcdef01234567", heads, 7, &t,
	                                         spec, sizeof(spec), &err),
	                 0);
	git_oid_tostr(hex, sizeof(hex), &t.oid);
	assert_string_equal(hex, "0123456789abcdef0123456789abcdef01234567");
	assert_string_equal(t.refname, "");
	assert_string_equal(spec, "+refs/heads/*:refs/sluice/heads/*");
	/* missing: the message names the ref as configured */
	assert_int_equal(sl_source__git_pick_ref("nope", heads, 7, &t, spec, sizeof(spec), &err),
	                 SL_ENOTFOUND);
	assert_string_equal(err.msg, "ref nope not found on the remote");
	assert_int_equal(sl_source__git_pick_ref(NULL, heads + 3, 4, &t, spec, sizeof(spec), &err),
	                 SL_ENOTFOUND);
	assert_string_equal(err.msg, "ref refs/heads/main not found on the remote");
	assert_false(sl_source__git_is_sha("0123456789ABCDEF0123456789abcdef01234567"));
}

/* ---- scrubbing messages ---------------------------------------------------------- */

static void test_scrub(void **state)
{
	char out[32], big[256];

	/* shorter replacements, several occurrences */
	assert_int_equal(sl_source__scrub("a https://u:p@h/r b https://u:p@h/r", "https://u:p@h/r",
	                                  "https://h/r", big, sizeof(big)),
	                 0);
	assert_string_equal(big, "a https://h/r b https://h/r");
	/* a replacement longer than what it replaces, that no longer fits */
	assert_int_equal(sl_source__scrub("x SECRET y SECRET z SECRET", "SECRET", "<redacted-credential>",
	                                  out, sizeof(out)),
	                 SL_ETOOLARGE);
	assert_true(strlen(out) < sizeof(out));
	assert_string_equal(out, "x <redacted-credential> y ...");
	assert_null(strstr(out, "SECRET"));
	/* exactly full: no marker */
	assert_int_equal(sl_source__scrub("0123456789012345678901234567890", "", "x", out, sizeof(out)), 0);
	assert_string_equal(out, "0123456789012345678901234567890");
	/* a replacement that contains the needle is not scanned again */
	assert_int_equal(sl_source__scrub("aba", "a", "aa", big, sizeof(big)), 0);
	assert_string_equal(big, "aabaa");
	/* the needle cut by the end of the buffer is dropped, never left in part */
	assert_int_equal(
	    sl_source__scrub("0123456789012345678901234SECRET", "SECRET", "<redacted>", out, sizeof(out)),
	    SL_ETOOLARGE);
	assert_string_equal(out, "0123456789012345678901234...");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_edit_in_place),
	    cmocka_unit_test(test_edit_second_document_only),
	    cmocka_unit_test(test_edit_adds_missing_field),
	    cmocka_unit_test(test_edit_multibyte_before),
	    cmocka_unit_test(test_edit_refusals),
	    cmocka_unit_test(test_edit_block_scalar),
	    cmocka_unit_test(test_known_hosts_plain),
	    cmocka_unit_test(test_known_hosts_hashed_and_revoked),
	    cmocka_unit_test(test_known_hosts_long_name),
	    cmocka_unit_test(test_known_hosts_wildcards),
	    cmocka_unit_test(test_url_host_too_long),
	    cmocka_unit_test(test_url_host),
	    cmocka_unit_test(test_pick_ref),
	    cmocka_unit_test(test_scrub),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
