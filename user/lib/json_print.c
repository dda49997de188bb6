// SPDX-License-Identifier: GPL-2.0
/* Text and JSON output through one set of calls (see json_print.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "json_print.h"

#define JSON_MAX_DEPTH 32

static struct {
	bool json;
	bool pretty;
	int depth;
	bool wrapped;			/* output is one top-level array */
	bool first[JSON_MAX_DEPTH];	/* no member printed yet at depth */
} jw;

bool is_json_context(void)
{
	return jw.json;
}

void json_escape(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		switch (c) {
		case '"':  fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		default:
			if (c < 0x20)
				fprintf(f, "\\u%04x", c);
			else
				fputc(c, f);
		}
	}
	fputc('"', f);
}

static void jw_indent(void)
{
	if (!jw.pretty)
		return;
	fputc('\n', stdout);
	for (int i = 0; i < jw.depth; i++)
		fputs("    ", stdout);
}

/* Separator and key for a new member at the current depth. */
static void jw_member(const char *key)
{
	if (jw.depth > 0) {
		if (!jw.first[jw.depth])
			fputc(',', stdout);
		jw.first[jw.depth] = false;
		jw_indent();
	}
	if (key) {
		json_escape(stdout, key);
		fputs(jw.pretty ? ": " : ":", stdout);
	}
}

static void jw_open(const char *key, char c)
{
	jw_member(key);
	fputc(c, stdout);
	if (jw.depth + 1 < JSON_MAX_DEPTH)
		jw.depth++;
	jw.first[jw.depth] = true;
}

static void jw_close(char c)
{
	bool empty = jw.first[jw.depth];

	if (jw.depth > 0)
		jw.depth--;
	if (!empty)
		jw_indent();
	fputc(c, stdout);
}

void new_json_obj(bool json, bool pretty)
{
	memset(&jw, 0, sizeof(jw));
	jw.json = json;
	jw.pretty = pretty;
	jw.wrapped = json;
	if (json)
		jw_open(NULL, '[');
}

void new_json_doc(bool json, bool pretty)
{
	memset(&jw, 0, sizeof(jw));
	jw.json = json;
	jw.pretty = pretty;
}

void delete_json_obj(void)
{
	if (jw.json) {
		while (jw.depth > 0)
			jw_close(jw.depth == 1 && jw.wrapped ? ']' : '}');
		fputc('\n', stdout);
	}
	fflush(stdout);
}

void open_json_object(const char *key)
{
	if (jw.json)
		jw_open(key, '{');
}

void close_json_object(void)
{
	if (jw.json)
		jw_close('}');
}

void open_json_array(enum output_type t, const char *key)
{
	if (jw.json) {
		if (t & PRINT_JSON)
			jw_open(key, '[');
	} else if ((t & PRINT_FP) && key) {
		printf("%s", key);
	}
}

void close_json_array(enum output_type t, const char *text_end)
{
	if (jw.json) {
		if (t & PRINT_JSON)
			jw_close(']');
	} else if ((t & PRINT_FP) && text_end) {
		printf("%s", text_end);
	}
}

#define PRINT_TEXT(fmt, value) do {			\
		if (!jw.json && (t & PRINT_FP) && (fmt))	\
			printf(fmt, value);			\
	} while (0)

void print_string(enum output_type t, const char *key, const char *fmt,
		  const char *value)
{
	if (jw.json) {
		if (t & PRINT_JSON) {
			jw_member(key);
			json_escape(stdout, value ? value : "");
		}
		return;
	}
	PRINT_TEXT(fmt, value ? value : "");
}

void print_uint(enum output_type t, const char *key, const char *fmt,
		unsigned int value)
{
	if (jw.json) {
		if (t & PRINT_JSON) {
			jw_member(key);
			printf("%u", value);
		}
		return;
	}
	PRINT_TEXT(fmt, value);
}

void print_u64(enum output_type t, const char *key, const char *fmt,
	       uint64_t value)
{
	if (jw.json) {
		if (t & PRINT_JSON) {
			jw_member(key);
			printf("%llu", (unsigned long long)value);
		}
		return;
	}
	PRINT_TEXT(fmt, (unsigned long long)value);
}

void print_int(enum output_type t, const char *key, const char *fmt, int value)
{
	if (jw.json) {
		if (t & PRINT_JSON) {
			jw_member(key);
			printf("%d", value);
		}
		return;
	}
	PRINT_TEXT(fmt, value);
}

void print_float(enum output_type t, const char *key, const char *fmt,
		 double value)
{
	if (jw.json) {
		if (t & PRINT_JSON) {
			jw_member(key);
			printf("%.6g", value);
		}
		return;
	}
	PRINT_TEXT(fmt, value);
}

void print_bool(enum output_type t, const char *key, const char *fmt,
		bool value)
{
	if (jw.json) {
		if (t & PRINT_JSON) {
			jw_member(key);
			fputs(value ? "true" : "false", stdout);
		}
		return;
	}
	PRINT_TEXT(fmt, value ? "true" : "false");
}

void print_null(enum output_type t, const char *key, const char *fmt)
{
	if (jw.json) {
		if (t & PRINT_JSON) {
			jw_member(key);
			fputs("null", stdout);
		}
		return;
	}
	if ((t & PRINT_FP) && fmt)
		fputs(fmt, stdout);
}

void print_nl(void)
{
	if (!jw.json)
		fputc('\n', stdout);
}
