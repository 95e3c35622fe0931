/* SPDX-License-Identifier: MIT */
/* Compiled twice by ctest: as is it must compile; with WRONG_KEY defined a
 * belongs-to relation names a key that is not a field of its model, which
 * ORM_MODEL_DEFINE_REL must reject at compile time. (WRONG_TARGET_KEY, a
 * has-many key that is not a field of the target, and WRONG_JOIN_KEY, an
 * ORM_THROUGH_MODEL column that is not a field of the join model, must
 * fail the same way.)
 *
 * The models cover every kind of relation: belongs-to, has-one, has-many,
 * many-to-many through a bare join table and through a join model, models
 * that refer to each other before both are declared, and the accessors,
 * whose outputs are typed by the relation's target. */
#include <uvorm.h>

#ifdef WRONG_KEY
#define BOOK_AUTHOR_KEY writer_id
#else
#define BOOK_AUTHOR_KEY author_id
#endif
#ifdef WRONG_TARGET_KEY
#define AUTHOR_BOOKS_KEY writer_id
#else
#define AUTHOR_BOOKS_KEY author_id
#endif
#ifdef WRONG_JOIN_KEY
#define BOOK_TAG_FROM book_ref
#else
#define BOOK_TAG_FROM book_id
#endif

#define AUTHOR_FIELDS(X)                                                       \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK | ORM_F_GENERATED)                       \
  X(name, ORM_T_TEXT, const char *, 0)
#define AUTHOR_RELATIONS(R)                                                    \
  R(books, ORM_HAS_MANY, book, AUTHOR_BOOKS_KEY, "title DESC, id")             \
  R(latest, ORM_HAS_ONE, book, author_id, "published DESC")
ORM_MODEL_DECLARE_REL(author, AUTHOR_FIELDS, AUTHOR_RELATIONS);

#define BOOK_FIELDS(X)                                                         \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK | ORM_F_GENERATED)                       \
  X(author_id, ORM_T_INT8, int64_t, ORM_F_NULLABLE)                            \
  X(title, ORM_T_TEXT, const char *, 0)                                        \
  X(published, ORM_T_DATE, int32_t, 0)
#define BOOK_RELATIONS(R)                                                      \
  R(author, ORM_BELONGS_TO, author, BOOK_AUTHOR_KEY, NULL)                     \
  R(tags, ORM_MANY_TO_MANY, tag,                                               \
    ORM_THROUGH_MODEL(book_tag, BOOK_TAG_FROM, tag_code), "code")              \
  R(shelves, ORM_MANY_TO_MANY, shelf,                                          \
    ORM_THROUGH("shelf_books", "book_id", "shelf_id"), NULL)
ORM_MODEL_DECLARE_REL(book, BOOK_FIELDS, BOOK_RELATIONS);

#define TAG_FIELDS(X) X(code, ORM_T_TEXT, const char *, ORM_F_PK)
ORM_MODEL_DECLARE(tag, TAG_FIELDS);

#define BOOK_TAG_FIELDS(X)                                                     \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK)                                         \
  X(book_id, ORM_T_INT8, int64_t, 0)                                           \
  X(tag_code, ORM_T_TEXT, const char *, 0)
ORM_MODEL_DECLARE(book_tag, BOOK_TAG_FIELDS);

#define SHELF_FIELDS(X) X(id, ORM_T_UUID, orm_uuid_t, ORM_F_PK)
ORM_MODEL_DECLARE(shelf, SHELF_FIELDS);

ORM_MODEL_DEFINE_REL(author, "authors", AUTHOR_FIELDS, AUTHOR_RELATIONS);
ORM_MODEL_DEFINE_REL_IN(book, "library", "books", BOOK_FIELDS,
                        BOOK_RELATIONS);
ORM_MODEL_DEFINE(tag, "tags", TAG_FIELDS);
ORM_MODEL_DEFINE(book_tag, "book_tags", BOOK_TAG_FIELDS);
ORM_MODEL_DEFINE(shelf, "shelves", SHELF_FIELDS);

int count_loaded(const author_t *a);
int count_loaded(const author_t *a) {
  book_t *books = NULL;
  size_t n = 0;
  int loaded = 0;
  if (ORM_REL_MANY(a, books, &books, &n) == 0) {
    for (size_t i = 0; i < n; i++) {
      author_t *who = NULL;
      tag_t *tags = NULL;
      shelf_t *shelves = NULL;
      size_t ntags = 0, nshelves = 0;
      loaded += ORM_REL_ONE(&books[i], author, &who) == 0;
      loaded += ORM_REL_MANY(&books[i], tags, &tags, &ntags) == 0;
      loaded += ORM_REL_MANY(&books[i], shelves, &shelves, &nshelves) == 0;
    }
  }
  book_t *latest = NULL;
  loaded += ORM_REL_ONE(a, latest, &latest) == 0;
  loaded += ORM_REL_LOADED(a, books) ? 1 : 0;
  return loaded + (author_model()->nrelations == 2 ? 0 : 1);
}
