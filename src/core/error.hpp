// Errors raised by pure C++ code. They carry a PostgreSQL SQLSTATE as five characters, so the
// guard (src/pg/guard.hpp) can report them faithfully without src/core including PostgreSQL.
#pragma once

#include <stdexcept>
#include <string>

namespace meridian {

namespace sqlstate {
inline constexpr const char *invalid_text_representation = "22P02";
inline constexpr const char *data_exception = "22000";
inline constexpr const char *numeric_value_out_of_range = "22003";
inline constexpr const char *invalid_parameter_value = "22023";
inline constexpr const char *data_corrupted = "XX001";
inline constexpr const char *program_limit_exceeded = "54000";
inline constexpr const char *feature_not_supported = "0A000";
inline constexpr const char *out_of_memory = "53200";
inline constexpr const char *internal_error = "XX000";
inline constexpr const char *object_not_in_prerequisite_state = "55000";
inline constexpr const char *invalid_object_definition = "42P17";
inline constexpr const char *datatype_mismatch = "42804";
inline constexpr const char *array_subscript_error = "2202E";
inline constexpr const char *null_value_not_allowed = "22004";
inline constexpr const char *index_corrupted = "XX002";
}  // namespace sqlstate

// A user-facing error with a SQLSTATE, message and optional detail and hint.
class error : public std::runtime_error {
public:
    error(const char *sqlstate, std::string message, std::string detail = {}, std::string hint = {})
        : std::runtime_error(std::move(message)), detail_(std::move(detail)), hint_(std::move(hint)) {
        for (int i = 0; i < 5; i++)
            code_[i] = sqlstate[i];
        code_[5] = '\0';
    }
    const char *sqlstate() const noexcept { return code_; }
    const std::string &detail() const noexcept { return detail_; }
    const std::string &hint() const noexcept { return hint_; }

private:
    char code_[6];
    std::string detail_;
    std::string hint_;
};

}  // namespace meridian
