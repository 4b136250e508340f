/* sluice version: our version and the versions of the libraries we run with. */
#include "cmd.h"
#include "config.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <git2.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <yaml.h>

/* No flag table: it has no options and ignores its arguments, as it always
 * did, so `sluice version --help` prints the versions too. */
int sl_cmd_version(int argc, char **argv)
{
	int maj, min, rev;
	curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);

	git_libgit2_version(&maj, &min, &rev);
	printf("sluice %s\n", SLUICE_VERSION);
	printf("libgit2 %d.%d.%d\n", maj, min, rev);
	printf("libcurl %s (%s)\n", cv->version, cv->ssl_version ? cv->ssl_version : "no TLS");
	printf("libyaml %s\n", yaml_get_version_string());
	printf("cJSON %s\n", cJSON_Version());
	printf("OpenSSL %s\n", OpenSSL_version(OPENSSL_VERSION_STRING));
	printf("libmicrohttpd %s\n", MHD_get_version());
	return 0;
}
