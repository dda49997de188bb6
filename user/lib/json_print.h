/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One output path for text and JSON, in the manner of iproute2: every
 * print_*() call names the JSON key and the text format; PRINT_ANY
 * prints in both modes, PRINT_JSON and PRINT_FP in one only.
 */
#ifndef FTVM_JSON_PRINT_H
#define FTVM_JSON_PRINT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum output_type {
	PRINT_FP = 1,
	PRINT_JSON = 2,
	PRINT_ANY = PRINT_FP | PRINT_JSON,
};

/* Start output; under JSON everything goes into one top-level array. */
void new_json_obj(bool json, bool pretty);
/* Start output whose JSON is a single top-level value (object). */
void new_json_doc(bool json, bool pretty);
void delete_json_obj(void);
bool is_json_context(void);

void open_json_object(const char *key);
void close_json_object(void);
void open_json_array(enum output_type t, const char *key);
void close_json_array(enum output_type t, const char *text_end);

void print_string(enum output_type t, const char *key, const char *fmt,
		  const char *value);
void print_uint(enum output_type t, const char *key, const char *fmt,
		unsigned int value);
void print_u64(enum output_type t, const char *key, const char *fmt,
	       uint64_t value);
void print_int(enum output_type t, const char *key, const char *fmt,
	       int value);
void print_float(enum output_type t, const char *key, const char *fmt,
		 double value);
void print_bool(enum output_type t, const char *key, const char *fmt,
		bool value);
void print_null(enum output_type t, const char *key, const char *fmt);
/* Text only: a newline (JSON mode ignores it). */
void print_nl(void);

/* Raw JSON string escaping, for callers that build JSON by hand. */
void json_escape(FILE *f, const char *s);

#endif
